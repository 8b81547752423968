"""Studies behind the recipes (settings chosen on validation splits) and diagnostics of the
benchmarks' results; the paper's experiments and the speed measurements are one level up."""
