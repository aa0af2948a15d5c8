"""FF variants built from the core's parts: goodness, objectives, blocks and schedules."""
