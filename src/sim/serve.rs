//! `intelli sim serve`: run the simulator in the foreground until Ctrl-C.
