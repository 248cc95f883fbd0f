"""The routing service: operator presence and capacity, the waiting queue, AssignDialog."""
