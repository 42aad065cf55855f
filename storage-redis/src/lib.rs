//! aqm-storage-redis (work in progress).
