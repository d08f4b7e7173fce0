//! Password hashing (PBKDF2-HMAC-SHA256, PHC strings) off the actor threads.
