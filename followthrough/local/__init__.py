"""Running every role on one machine: the supervisor of `up` and the embedded servers."""
