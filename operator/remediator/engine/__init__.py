"""Pure decision logic: plain data in, plain data out, the clock injected. No I/O here."""
