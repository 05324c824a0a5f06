"""The file names of a release bundle (shared by the builder and the store that checks bundles)."""

SCHEMA = "edgekit.release/1"
SUMMARY = "summary.json"
BOM = "bom.cdx.json"
CHECK_JSON = "check.json"
CHECK_HTML = "check.html"
PROFILE_JSON = "profile.json"
PROFILE_HTML = "profile.html"
AUDIT_JSON = "audit.json"
AUDIT_HTML = "audit.html"
SIGNATURE = "release.sig"  # signs every other file of the folder together
PUBLIC_KEY = "release.pub.pem"  # the signer's public key: integrity for anyone, trust only if the store trusts it
