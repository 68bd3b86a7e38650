# Sourced by bin/hello_django before every command. Set defaults here; never secrets.
# The launcher has exported RELEASE_ROOT, RELEASE_NAME, RELEASE_VSN, RELEASE_COMMAND,
# RELEASE_PROG and RELEASE_TMP.
