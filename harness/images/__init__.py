"""Stage 2, images: what gets built. The sources lock and Debian mirror, source trees and
patch series, the systems under test, the content-addressed cache, one recipe module per
image (build/), our SCMI server for TF-A (scmi/: protocol table, board -> C tables,
install, host build, trace format), cpio archives and build commands."""
