//! Access and refresh tokens (JWT through jsonwebtoken).
