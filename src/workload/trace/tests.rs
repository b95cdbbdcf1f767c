//! Trace reader tests against the fixtures in `tests/fixtures/traces/` and
//! generated rows.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use proptest::strategy::Strategy;

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces")
        .join(name)
}

fn read_all(name: &str, opts: &TraceOptions) -> (Vec<Request>, SkipCounts) {
    let mut src = open(&fixture(name), opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut v = Vec::new();
    while let Some(r) = src.next_request().unwrap_or_else(|e| panic!("{name}: {e}")) {
        v.push(r);
    }
    (v, src.skipped())
}

fn arrivals(v: &[Request]) -> Vec<u64> {
    v.iter().map(|r| r.arrival_ns).collect()
}

fn tokens(v: &[Request]) -> Vec<(u32, u32)> {
    v.iter()
        .map(|r| (r.input_tokens, r.output_tokens))
        .collect()
}

fn label<'a>(r: &'a Request, key: &str) -> Option<&'a str> {
    r.extra
        .as_ref()?
        .labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The first error of a full replay (at open or while streaming).
fn first_error(name: &str, opts: &TraceOptions) -> InputError {
    match open(&fixture(name), opts) {
        Err(e) => e,
        Ok(mut src) => loop {
            match src.next_request() {
                Err(e) => break e,
                Ok(None) => panic!("{name}: expected an error"),
                Ok(Some(_)) => {}
            }
        },
    }
}

fn assert_row_error(name: &str, want_line: u64, want_field: &str) {
    match first_error(name, &TraceOptions::default()) {
        InputError::TraceRow {
            path, line, field, ..
        } => {
            assert_eq!(path, fixture(name));
            assert_eq!((line, field.as_str()), (want_line, want_field), "{name}");
        }
        other => panic!("{name}: expected TraceRow, got {other:?}"),
    }
}

#[test]
fn detects_every_fixture_format() {
    let cases = [
        ("fleet_sim.jsonl", TraceFormat::FleetSimJsonl),
        ("fleet_sim.csv", TraceFormat::FleetSimCsv),
        ("azure_2023.csv", TraceFormat::Azure),
        ("azure_2024.csv", TraceFormat::Azure),
        ("mooncake.jsonl", TraceFormat::Mooncake),
        ("vidur.csv", TraceFormat::Vidur),
        ("burstgpt.csv", TraceFormat::BurstGpt),
    ];
    for (name, want) in cases {
        assert_eq!(detect_format(&fixture(name)).unwrap(), want, "{name}");
    }
    assert!(matches!(
        detect_format(&fixture("unknown_layout.csv")),
        Err(InputError::UnknownTraceFormat { .. })
    ));
}

#[test]
fn fleet_sim_jsonl_rezeroed_with_labels() {
    let (v, skips) = read_all("fleet_sim.jsonl", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 250_000_000, 1_500_000_000]);
    assert_eq!(tokens(&v), [(100, 20), (200, 30), (300, 40)]);
    assert_eq!(
        v[0].extra.as_ref().unwrap().model.as_deref(),
        Some("llama-8b")
    );
    assert_eq!(v[1].category, Category::Code);
    assert_eq!(label(&v[1], "selected_model"), Some("llama70b"));
    assert_eq!(label(&v[1], "complexity"), Some("high"));
    assert_eq!(
        v[1].extra.as_ref().unwrap().model.as_deref(),
        Some("llama70b")
    );
    assert_eq!(v[2].category, Category::Other);
    assert_eq!(v[2].category_str(), "poetry");
    assert_eq!(skips, SkipCounts::default());

    let opts = TraceOptions {
        time_scale: 2.0,
        ..TraceOptions::default()
    };
    let (v, _) = read_all("fleet_sim.jsonl", &opts);
    assert_eq!(arrivals(&v), [0, 500_000_000, 3_000_000_000]);
    let opts = TraceOptions {
        time_scale: 0.5,
        max_requests: Some(2),
        ..TraceOptions::default()
    };
    let (v, _) = read_all("fleet_sim.jsonl", &opts);
    assert_eq!(arrivals(&v), [0, 125_000_000]);
}

#[test]
fn fleet_sim_csv() {
    let (v, _) = read_all("fleet_sim.csv", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 250_000_000, 1_000_000_000]);
    assert_eq!(tokens(&v), [(689, 48), (231, 52), (1000, 1)]);
    assert_eq!(v[0].category, Category::Prose);
    assert_eq!(label(&v[0], "complexity"), Some("low"));
    assert_eq!(v[1].category, Category::Rag);
    assert_eq!(label(&v[1], "complexity"), None);
    assert_eq!(
        v[1].extra.as_ref().unwrap().model.as_deref(),
        Some("llama-70b")
    );
    assert!(v[2].extra.is_none());
}

#[test]
fn azure_both_timestamp_styles() {
    let (v, _) = read_all("azure_2023.csv", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 4_314_579_000, 13_319_410_000]);
    assert_eq!(tokens(&v), [(4808, 10), (3180, 8), (110, 27)]);
    let (v, _) = read_all("azure_2024.csv", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 19_930_000, 1_010_000_000]);
    assert_eq!(tokens(&v), [(2162, 5), (957, 11), (10, 1)]);
}

#[test]
fn mooncake_ms_and_hashes() {
    let (v, _) = read_all("mooncake.jsonl", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 1_500_000_000, 27_482_000_000]);
    assert_eq!(tokens(&v), [(6955, 52), (6472, 26), (100, 1)]);
    assert_eq!(v[1].extra.as_ref().unwrap().prefix_hashes, [46, 47, 49]);
    assert!(v[2].extra.is_none());
}

#[test]
fn vidur_and_burstgpt() {
    let (v, _) = read_all("vidur.csv", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 125_000_000, 1_500_000_000]);
    assert_eq!(tokens(&v), [(512, 128), (1024, 256), (64, 8)]);
    let (v, skips) = read_all("burstgpt.csv", &TraceOptions::default());
    assert_eq!(arrivals(&v), [0, 113_000_000_000]);
    assert_eq!(tokens(&v), [(472, 18), (417, 276)]);
    assert_eq!(v[1].extra.as_ref().unwrap().model.as_deref(), Some("GPT-4"));
    assert_eq!(label(&v[1], "log_type"), Some("API log"));
    assert_eq!(
        skips,
        SkipCounts {
            bad_rows: 0,
            failed_requests: 1
        }
    );
    let opts = TraceOptions {
        format: Some(TraceFormat::BurstGpt),
        ..TraceOptions::default()
    };
    assert_eq!(count_requests(&fixture("burstgpt.csv"), &opts).unwrap(), 2);
}

#[test]
fn malformed_rows_name_line_and_field() {
    assert_row_error("bad_missing_column.csv", 1, "generated_tokens");
    assert_row_error("bad_missing_field.csv", 3, "generated_tokens");
    assert_row_error("bad_negative_tokens.jsonl", 2, "prompt_tokens");
    assert_row_error("bad_timestamp_azure.csv", 3, "TIMESTAMP");
    assert_row_error("bad_out_of_order.csv", 4, "arrived_at");
    assert_row_error("bad_mooncake.jsonl", 2, "output_length");
    for name in ["empty.jsonl", "header_only.csv"] {
        assert!(
            matches!(
                first_error(name, &TraceOptions::default()),
                InputError::EmptyFile { .. }
            ),
            "{name}"
        );
    }
    // Forced format on an empty file is still "empty", not a header error.
    let opts = TraceOptions {
        format: Some(TraceFormat::Vidur),
        ..TraceOptions::default()
    };
    assert!(matches!(
        first_error("empty.jsonl", &opts),
        InputError::EmptyFile { .. }
    ));
    let msg = first_error("bad_timestamp_azure.csv", &TraceOptions::default()).to_string();
    assert!(
        msg.contains("bad_timestamp_azure.csv:3") && msg.contains("expected"),
        "{msg}"
    );
}

#[test]
fn skip_bad_rows_counts_them() {
    let skip = TraceOptions {
        skip_bad_rows: true,
        ..TraceOptions::default()
    };
    let (v, s) = read_all("bad_out_of_order.csv", &skip);
    assert_eq!(arrivals(&v), [0, 1_000_000_000, 2_000_000_000]);
    assert_eq!(s.bad_rows, 1);
    let (v, s) = read_all("bad_negative_tokens.jsonl", &skip);
    assert_eq!(v.len(), 2);
    assert_eq!(s.bad_rows, 1);
    let (v, s) = read_all("bad_mooncake.jsonl", &skip);
    assert_eq!(tokens(&v), [(10, 2), (11, 4)]);
    assert_eq!(arrivals(&v), [0, 20_000_000]);
    assert_eq!(s.bad_rows, 3);
    let (v, s) = read_all("bad_missing_field.csv", &skip);
    assert_eq!(v.len(), 2);
    assert_eq!(s.bad_rows, 1);
    // A header problem cannot be skipped.
    assert!(matches!(
        first_error("bad_missing_column.csv", &skip),
        InputError::TraceRow { line: 1, .. }
    ));
}

#[test]
fn bad_options_are_field_errors() {
    for opts in [
        TraceOptions {
            time_scale: 0.0,
            ..TraceOptions::default()
        },
        TraceOptions {
            time_scale: f64::NAN,
            ..TraceOptions::default()
        },
        TraceOptions {
            max_requests: Some(0),
            ..TraceOptions::default()
        },
    ] {
        assert!(matches!(
            open(&fixture("vidur.csv"), &opts),
            Err(InputError::Field { .. })
        ));
    }
    assert!(matches!(
        open(&fixture("does_not_exist.csv"), &TraceOptions::default()),
        Err(InputError::Io { .. })
    ));
}

#[test]
fn shared_trace_samples_replay() {
    let Some(dir) = crate::shared_data::shared_data("trace_samples", "shared_trace_samples_replay")
    else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let rows = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
        let header = u64::from(p.extension().is_some_and(|e| e == "csv"));
        let n = count_requests(&p, &TraceOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(n, rows - header, "{}", p.display());
        let mut src = open(&p, &TraceOptions::default()).unwrap();
        let first = src.next_request().unwrap().unwrap();
        assert_eq!(first.arrival_ns, 0);
        seen += 1;
    }
    assert!(seen > 0);
}

fn source_from(text: Vec<u8>, format: TraceFormat, skip: bool) -> Result<TraceSource, InputError> {
    let opts = TraceOptions {
        skip_bad_rows: skip,
        ..TraceOptions::default()
    };
    TraceSource::from_reader(Cursor::new(text), Path::new("gen"), format, &opts)
}

fn drain(src: &mut TraceSource) -> Result<Vec<Request>, InputError> {
    let mut v = Vec::new();
    while let Some(r) = src.next_request()? {
        v.push(r);
    }
    Ok(v)
}

const ALL: [TraceFormat; 6] = [
    TraceFormat::FleetSimJsonl,
    TraceFormat::FleetSimCsv,
    TraceFormat::Azure,
    TraceFormat::Mooncake,
    TraceFormat::Vidur,
    TraceFormat::BurstGpt,
];

/// Render rows `(time_ms since start, isl, osl)` in a format.
fn render(format: TraceFormat, rows: &[(u64, u32, u32)]) -> String {
    let mut s = match format {
        TraceFormat::FleetSimCsv => "timestamp,prompt_tokens,generated_tokens\n".to_string(),
        TraceFormat::Azure => "TIMESTAMP,ContextTokens,GeneratedTokens\n".to_string(),
        TraceFormat::Vidur => "arrived_at,num_prefill_tokens,num_decode_tokens\n".to_string(),
        TraceFormat::BurstGpt => {
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n".to_string()
        }
        _ => String::new(),
    };
    for &(ms, i, o) in rows {
        let secs = format!("{}.{:03}", 7 + ms / 1000, ms % 1000);
        s += &match format {
            TraceFormat::FleetSimJsonl => {
                format!("{{\"timestamp\":{secs},\"prompt_tokens\":{i},\"generated_tokens\":{o}}}\n")
            }
            TraceFormat::Mooncake => format!(
                "{{\"timestamp\":{},\"input_length\":{i},\"output_length\":{o},\"hash_ids\":[1,2]}}\n",
                ms + 3
            ),
            TraceFormat::FleetSimCsv | TraceFormat::Vidur => format!("{secs},{i},{o}\n"),
            TraceFormat::BurstGpt => format!("{secs},ChatGPT,{i},{o},{},Conversation log\n", i + o),
            TraceFormat::Azure => {
                let t = ms / 1000;
                format!(
                    "2024-05-10 {:02}:{:02}:{:02}.{:03}0000,{i},{o}\n",
                    t / 3600,
                    (t / 60) % 60,
                    t % 60,
                    ms % 1000
                )
            }
        };
    }
    s
}

proptest::proptest! {
    #[test]
    fn readers_never_panic_on_garbage(
        lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                "[-0-9.,e: {}\"a-z_]{0,40}".prop_map(String::into_bytes),
            ],
            0..8,
        ),
        skip: bool,
    ) {
        for format in ALL {
            let mut text = render(format, &[]).into_bytes();
            for l in &lines {
                text.extend_from_slice(l);
                text.push(b'\n');
            }
            if let Ok(mut src) = source_from(text, format, skip) {
                let _ = drain(&mut src);
            }
        }
    }

    #[test]
    fn valid_rows_round_trip(
        steps in proptest::collection::vec((0u64..5000, 1u32..2_000_000, 1u32..100_000), 1..30),
    ) {
        let mut t = 0;
        let rows: Vec<(u64, u32, u32)> = steps
            .iter()
            .map(|&(gap, i, o)| {
                t += gap;
                (t, i, o)
            })
            .collect();
        for format in ALL {
            let text = render(format, &rows).into_bytes();
            let mut src = source_from(text, format, false)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{format}: {e}")))?;
            let got = drain(&mut src)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{format}: {e}")))?;
            proptest::prop_assert_eq!(got.len(), rows.len());
            for (r, &(ms, i, o)) in got.iter().zip(&rows) {
                proptest::prop_assert_eq!(r.arrival_ns, (ms - rows[0].0) * 1_000_000);
                proptest::prop_assert_eq!((r.input_tokens, r.output_tokens), (i, o));
            }
        }
    }
}

#[test]
fn format_names_agree_between_clap_serde_and_display() {
    use clap::ValueEnum;
    for f in ALL {
        let clap_name = f.to_possible_value().unwrap().get_name().to_string();
        assert_eq!(clap_name, f.name());
        assert_eq!(f.to_string(), f.name());
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, format!("\"{}\"", f.name()));
        assert_eq!(serde_json::from_str::<TraceFormat>(&json).unwrap(), f);
    }
}
