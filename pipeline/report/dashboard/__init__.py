"""`ship dashboard` and `ship serve`: what runs where, canaries, a timeline and DORA charts.

    model.py   gather a Board from git (and the cluster, when asked)
    page.py    the HTML: semantic, readable without colour, charts by the vendored Chart.js
    site.py    the static site on disk, and the same page served live on 127.0.0.1
    assets/    Chart.js (VENDOR.md: version, hash, licence), dashboard.js, dashboard.css

Never writes to git and never changes a cluster.
"""
