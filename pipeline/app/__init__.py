"""Assembly: what turns a config into a running ``reid-stream``.

The core stages (sources, detect, track, embed, gallery, sinks) know nothing of configs or command
lines; this package maps a :class:`~reidstream.pipeline.app.config.StreamConfig` onto them
(:mod:`.sources`, :mod:`.sinks`, :mod:`.stream`), checks the output directory (:mod:`.outputs`) and
holds the command lines (:mod:`.cli`).
"""
