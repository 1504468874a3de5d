"""Feed exchange: pulling partners' TAXII feeds in and pushing releasable feeds out."""
