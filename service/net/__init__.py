"""Network tools every part of the service uses: URL rules (``urls``), the SSRF guard at connect
time (``ssrf``), bounded fetching with conditional GET, redirects and size caps (``fetcher``,
``decompress``), per-host politeness (``hosts``) and robots.txt (``robots``). Nothing here knows
about feeds, articles or the database."""
