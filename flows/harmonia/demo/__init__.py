"""Demo channel APIs: a deterministic contact-center world served over vendor-shaped HTTP APIs."""

#: days a generated world spans unless asked otherwise (generator, server, bench)
WORLD_DAYS = 30
