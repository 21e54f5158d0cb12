//! Rate limits for login, registration and recovery: in memory (one instance) or in Redis (shared).
