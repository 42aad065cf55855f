//! aqm-storage-redb (work in progress).
