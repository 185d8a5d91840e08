"""The behaviour-cloning baseline family (`model`)."""
