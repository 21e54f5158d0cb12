//! Datagram and authenticator checks, reply building.
