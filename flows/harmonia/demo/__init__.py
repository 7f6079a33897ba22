"""Demo channel APIs: a deterministic contact-center world served over vendor-shaped HTTP APIs."""
