"""reid-stream offline training: datasets (real layouts and synthetic), methods, evaluation."""
