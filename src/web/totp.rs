//! Time-based one-time passwords (RFC 6238) for the optional second factor, with QR enrolment and recovery codes.
