"""Tools around the live system: scoring a run against ground truth (``reid-score``), the stage
benchmark (``reid-stream-bench``) and enrolment of known people from images."""
