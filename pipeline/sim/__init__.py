"""The simulated RGB-D/IR/thermal camera world: people, room, sensors, ground truth."""
