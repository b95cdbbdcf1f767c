"""Writes traces/chat_sample.jsonl: a small synthetic chat trace in the
fleet-sim JSONL layout (timestamp s, prompt_tokens, generated_tokens, model),
for README examples that must run without ../shared.

3,000 requests, Poisson arrivals at 10 req/s; prompt and output lengths
lognormal with medians 1020 and 129 tokens and sigma 1.0 (the medians of the
Azure 2023 conversation trace as published in the Splitwise paper), capped at
7000 and 1000; 80% llama-70b, 20% llama-8b. Deterministic (seed 2026):
    python3 traces/make_chat_sample.py
"""

import json
import math
import random
from pathlib import Path

rng = random.Random(2026)
t = 0.0
lines = []
for _ in range(3000):
    t += rng.expovariate(10.0)
    isl = min(7000, max(1, round(rng.lognormvariate(math.log(1020), 1.0))))
    osl = min(1000, max(1, round(rng.lognormvariate(math.log(129), 1.0))))
    model = "llama-70b" if rng.random() < 0.8 else "llama-8b"
    lines.append(json.dumps({"timestamp": round(t, 3), "prompt_tokens": isl,
                             "generated_tokens": osl, "model": model},
                            separators=(",", ":")))
out = Path(__file__).with_name("chat_sample.jsonl")
out.write_text("\n".join(lines) + "\n")
