//! The signal groups a report may cite, with their plain meanings.
//!
//! The single-letter signals of the International Code of Signals (1969 edition, as amended),
//! and the two-letter distress groups. A group not here is refused, so that a report never
//! carries a code its reader cannot look up.

/// The sources a signal may be cited from.
pub const SOURCES: [&str; 1] = ["ICS"];

/// (group, plain meaning) from the International Code of Signals.
pub const ICS: &[(&str, &str)] = &[
    ("A", "I have a diver down; keep well clear at slow speed."),
    ("B", "I am taking in, or discharging, or carrying dangerous goods."),
    ("C", "Affirmative."),
    ("D", "Keep clear of me; I am manoeuvring with difficulty."),
    ("E", "I am altering my course to starboard."),
    ("F", "I am disabled; communicate with me."),
    ("G", "I require a pilot."),
    ("H", "I have a pilot on board."),
    ("I", "I am altering my course to port."),
    ("J", "I am on fire and have dangerous cargo on board: keep well clear of me."),
    ("K", "I wish to communicate with you."),
    ("L", "You should stop your vessel instantly."),
    ("M", "My vessel is stopped and making no way through the water."),
    ("N", "Negative."),
    ("O", "Man overboard."),
    ("P", "All persons should report on board as the vessel is about to proceed to sea."),
    ("Q", "My vessel is healthy and I request free pratique."),
    ("S", "I am operating astern propulsion."),
    ("T", "Keep clear of me; I am engaged in pair trawling."),
    ("U", "You are running into danger."),
    ("V", "I require assistance."),
    ("W", "I require medical assistance."),
    ("X", "Stop carrying out your intentions and watch for my signals."),
    ("Y", "I am dragging my anchor."),
    ("Z", "I require a tug."),
    ("AC", "I am abandoning my vessel."),
    ("NC", "I am in distress and require immediate assistance."),
];

/// The plain meaning of `group` in `source`, if the code has it.
pub fn meaning(source: &str, group: &str) -> Option<&'static str> {
    match source {
        "ICS" => ICS.iter().find(|(g, _)| *g == group).map(|(_, m)| *m),
        _ => None,
    }
}
