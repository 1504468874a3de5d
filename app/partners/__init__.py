"""Partner nations: who they are and the rank their agreement clears them to."""
