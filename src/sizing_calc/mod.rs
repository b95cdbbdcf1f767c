//! NAT-compatible sizing calculator (being built; see issue 7).
