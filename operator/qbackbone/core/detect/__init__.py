"""detect: anomalies in backbone telemetry, by a quantum kernel where it pays, else classically."""
