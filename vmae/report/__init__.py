"""Study reporting: run names (runs), tables beside the paper's numbers (tables), figures (plots)."""
