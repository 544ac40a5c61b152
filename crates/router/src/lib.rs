//! Path normalization and route matching: host, radix tree of paths, method and header predicates.
