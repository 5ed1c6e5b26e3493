"""Model monitoring: reference profiles, drift, live performance, fairness, SLOs and alerts."""
