//! The `users` service.
