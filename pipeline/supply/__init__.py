"""Supply: the image flows that take the Context: build, push and sign an app's image (build.py),
and verify what an environment pins (verify.py). The registry and engine I/O they use is in
image/."""
