"""HTTP: each module translates requests into one domain call and a page or JSON."""
