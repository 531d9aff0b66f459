"""The dispatcher and the schedule table it reads: due work handed to the broker at its due time."""
