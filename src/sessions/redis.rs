//! Redis live-session store.
