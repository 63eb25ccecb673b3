"""One presenter per resource kind: what the generic ResourceView shows of it."""
