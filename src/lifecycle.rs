//! The lifecycle of one environment of a job attempt, as one pure state machine: the phases
//! are an enum, and every change is [`Phase::on`] of an [`Event`] (docs/ARCHITECTURE.md, "The
//! lifecycle"). The ledger stores the phase in the record (serialised as the record's
//! documented `passes` fields, [`EnvPasses`]) and applies events; nothing else changes a phase.
//!
//! ```text
//!   FirstPass ──Settled──▶ Verifying{1} ──Verified{1}──▶ FirstPassed ──Plan──▶ AwaitingSecond
//!       │  └──Settled (no probe)────────────────────────────▲                    │   │
//!       │                                                    Plan (no second pass)│   Start
//!       ▼                                                          ▼              │   ▼
//!   (NewWork from any phase goes back to FirstPass)               Done ◀──Verified{2}── Verifying{2}
//!                                                                   ▲                 ▲
//!                                                                   └─Settled (no probe)── SecondPass
//! ```
//!
//! Choices where the contract is silent:
//! - Second passes are planned for every environment at once, when no environment is still
//!   verifying its first pass ([`Event::Plan`]), and start together when the latest is due.
//! - An event that does not apply to the phase (a verification of another pass, a second
//!   start of the same pass, a late report) changes nothing: a repeated or stale delivery of
//!   an event is harmless.

use serde::{Deserialize, Serialize};

/// Which purge pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PassNo {
    First = 1,
    Second = 2,
}

impl PassNo {
    pub fn from_u8(n: u8) -> Option<PassNo> {
        match n {
            1 => Some(PassNo::First),
            2 => Some(PassNo::Second),
            _ => None,
        }
    }
}

/// Where one environment of an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Its first pass: items collected, actions purged.
    #[default]
    FirstPass,
    /// A pass is over and its after-purge probe is due (or handed out until `lease_until_ms`);
    /// a cached copy older than `since_ms` (the end of the pass) is stale.
    Verifying {
        pass: PassNo,
        since_ms: i64,
        lease_until_ms: i64,
    },
    /// The first pass is over (and probed); its second pass is not decided yet.
    FirstPassed,
    /// Waits for its second pass, due at `due_ms`.
    AwaitingSecond { due_ms: i64 },
    /// The second pass runs (the first pass's purge calls sent again).
    SecondPass { due_ms: i64 },
    /// No pass left (and, when the environment warms its cache, not warmed yet).
    Done,
    /// Its purged URLs are being requested again (`warm`, docs/CONTRACT.md, "Warm after the
    /// purge").
    Warming,
    /// Warmed: nothing left.
    Warmed,
}

/// What happens to an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Every action of the attempt is settled and every scope collected, at `now_ms`; `probe`:
    /// the environment's purged URLs are probed after each pass.
    Settled { now_ms: i64, probe: bool },
    /// The probe of `pass` reported.
    Verified { pass: PassNo },
    /// Hands the due probe out until `until_ms`, unless it is handed out already.
    Lease { now_ms: i64, until_ms: i64 },
    /// Decides the second pass (no environment is verifying its first pass): due at `due_ms`
    /// when the environment both changed KV and purged Cloudflare and a delay is configured.
    Plan { due_ms: Option<i64> },
    /// The second passes due by `now_ms` start.
    Start { now_ms: i64 },
    /// New work arrived after the first pass ended (a late delivery): the passes run again.
    NewWork,
    /// Every environment's passes are over: one that warms starts warming.
    Warm,
    /// The environment's warming ended.
    Warmed,
}

/// What an event asks of the caller besides the new phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// The first pass ended now (the record's `first_pass_at`, a timeline event).
    FirstPassEnded,
    /// The second pass ended now (`second_pass_at`).
    SecondPassEnded,
    /// The second pass started: its actions are armed again.
    SecondPassStarted,
    /// A second pass was scheduled: send the delayed message.
    SecondScheduled { due_ms: i64 },
    /// The probe was handed out to the caller.
    Leased,
    /// The environment gets no second pass.
    NoSecondPass,
    /// Warming started: its URLs are to be listed.
    WarmingStarted,
    /// Warming ended.
    WarmingEnded,
    /// A probe's result is to be stored.
    Verified,
}

impl Phase {
    /// The transition function: the phase after `event`, and what the caller has to do.
    pub fn on(self, event: Event) -> (Phase, Effect) {
        use Effect as E;
        use Phase::*;
        let verifying = |pass, since_ms| Verifying {
            pass,
            since_ms,
            lease_until_ms: 0,
        };
        match (self, event) {
            (_, Event::NewWork) => (FirstPass, E::None),
            (FirstPass, Event::Settled { now_ms, probe }) => (
                if probe {
                    verifying(PassNo::First, now_ms)
                } else {
                    FirstPassed
                },
                E::FirstPassEnded,
            ),
            (SecondPass { .. }, Event::Settled { now_ms, probe }) => (
                if probe {
                    verifying(PassNo::Second, now_ms)
                } else {
                    Done
                },
                E::SecondPassEnded,
            ),
            (Verifying { pass, .. }, Event::Verified { pass: p }) if pass == p => (
                match pass {
                    PassNo::First => FirstPassed,
                    PassNo::Second => Done,
                },
                E::Verified,
            ),
            (
                Verifying {
                    pass,
                    since_ms,
                    lease_until_ms,
                },
                Event::Lease { now_ms, until_ms },
            ) if lease_until_ms <= now_ms => (
                Verifying {
                    pass,
                    since_ms,
                    lease_until_ms: until_ms,
                },
                E::Leased,
            ),
            (
                FirstPassed,
                Event::Plan {
                    due_ms: Some(due_ms),
                },
            ) => (AwaitingSecond { due_ms }, E::SecondScheduled { due_ms }),
            (FirstPassed, Event::Plan { due_ms: None }) => (Done, E::NoSecondPass),
            (AwaitingSecond { due_ms }, Event::Start { now_ms }) if due_ms <= now_ms => {
                (SecondPass { due_ms }, E::SecondPassStarted)
            }
            (Done, Event::Warm) => (Warming, E::WarmingStarted),
            (Warming, Event::Warmed) => (Warmed, E::WarmingEnded),
            (phase, _) => (phase, E::None),
        }
    }

    /// Whether the environment waits for its probe.
    pub fn verifying(self) -> bool {
        matches!(self, Phase::Verifying { .. })
    }

    /// Whether the environment has actions to purge or collect in this phase.
    pub fn purging(self) -> bool {
        matches!(self, Phase::FirstPass | Phase::SecondPass { .. })
    }

    /// Nothing left (its passes over, and its warming, if it warms).
    pub fn is_done(self) -> bool {
        matches!(self, Phase::Done | Phase::Warmed)
    }

    /// When its second pass is due, once scheduled.
    pub fn second_due_ms(self) -> Option<i64> {
        match self {
            Phase::AwaitingSecond { due_ms } | Phase::SecondPass { due_ms } => Some(due_ms),
            _ => None,
        }
    }
}

/// What a whole attempt does next, from its environments' phases: the one answer the
/// pipeline's steps and the ledger's alarm both obey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Collect or purge (some environment is in a pass, or none has started).
    Work,
    /// Run the due probes.
    Verify,
    /// Decide the second passes ([`Event::Plan`]).
    Plan,
    /// Wait for the second passes, the latest due at `due_ms`, then start them.
    SecondPassAt { due_ms: i64 },
    /// Request the purged URLs again.
    Warm,
    /// Every environment is done: the attempt ends.
    Finish,
}

/// The attempt's next move, once every scope is collected and every action settled (the
/// environments have applied [`Event::Settled`]).
pub fn next<'a>(phases: impl IntoIterator<Item = &'a Phase> + Clone) -> Next {
    let all = || phases.clone().into_iter().copied();
    if all().any(Phase::verifying) {
        return Next::Verify;
    }
    if all().any(|p| p == Phase::FirstPassed) {
        return Next::Plan;
    }
    if let Some(due_ms) = all()
        .filter_map(|p| match p {
            Phase::AwaitingSecond { due_ms } => Some(due_ms),
            _ => None,
        })
        .max()
    {
        return Next::SecondPassAt { due_ms };
    }
    if all().any(Phase::purging) {
        return Next::Work;
    }
    if all().any(|p| p == Phase::Warming) {
        return Next::Warm;
    }
    Next::Finish
}

/// One environment's passes as the record keeps them: the phase and the times the record
/// shows. Serialised as the record's documented `passes` fields (docs/CONTRACT.md, "Job
/// record"), which are derived from the phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPasses {
    pub phase: Phase,
    pub first_pass_at: Option<String>,
    pub second_pass_at: Option<String>,
    /// The environment's last KV change (ms since the epoch).
    pub last_kv_ms: Option<i64>,
}

impl EnvPasses {
    /// Applies `event` at `now` (ISO-8601) and records the pass times it ends.
    pub fn apply(&mut self, event: Event, now: &str) -> Effect {
        let (phase, effect) = self.phase.on(event);
        if event == Event::NewWork {
            *self = EnvPasses::default();
            return effect;
        }
        self.phase = phase;
        match effect {
            Effect::FirstPassEnded => self.first_pass_at = Some(now.to_string()),
            Effect::SecondPassEnded => self.second_pass_at = Some(now.to_string()),
            _ => {}
        }
        effect
    }

    /// The probe due, as the record shows it (`verify_due`).
    pub fn verify_due(&self) -> Option<VerifyDue> {
        match self.phase {
            Phase::Verifying {
                pass,
                since_ms,
                lease_until_ms,
            } => Some(VerifyDue {
                pass: pass as u8,
                since_ms,
                lease_until_ms,
            }),
            _ => None,
        }
    }
}

/// An environment's probe waiting to run, as the record shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyDue {
    /// After the first pass (1) or the second (2).
    pub pass: u8,
    /// The end of that pass (ms since the epoch): a cached copy older than this is stale.
    pub since_ms: i64,
    /// Handed out to an invocation until then.
    #[serde(default)]
    pub lease_until_ms: i64,
}

/// The record's documented fields for one environment's passes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Wire {
    first_pass_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    second_due_ms: Option<i64>,
    #[serde(default)]
    second_started: bool,
    second_pass_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_kv_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verify_due: Option<VerifyDue>,
    #[serde(default)]
    second_planned: bool,
    /// Warming: `false` while it runs, `true` once it ended (absent: no warming yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warmed: Option<bool>,
}

impl From<&EnvPasses> for Wire {
    fn from(p: &EnvPasses) -> Wire {
        let phase = p.phase;
        let second_started = matches!(phase, Phase::SecondPass { .. })
            || matches!(
                phase,
                Phase::Verifying {
                    pass: PassNo::Second,
                    ..
                }
            )
            || (phase == Phase::Done && p.second_pass_at.is_some());
        Wire {
            first_pass_at: p.first_pass_at.clone(),
            second_due_ms: phase.second_due_ms(),
            second_started,
            second_pass_at: p.second_pass_at.clone(),
            last_kv_ms: p.last_kv_ms,
            verify_due: p.verify_due(),
            second_planned: matches!(
                phase,
                Phase::AwaitingSecond { .. }
                    | Phase::SecondPass { .. }
                    | Phase::Done
                    | Phase::Warming
                    | Phase::Warmed
            ) || second_started,
            warmed: match phase {
                Phase::Warming => Some(false),
                Phase::Warmed => Some(true),
                _ => None,
            },
        }
    }
}

impl From<Wire> for EnvPasses {
    fn from(w: Wire) -> EnvPasses {
        let phase = match (w.verify_due, w.second_due_ms) {
            _ if w.warmed == Some(false) => Phase::Warming,
            _ if w.warmed == Some(true) => Phase::Warmed,
            (Some(d), _) => Phase::Verifying {
                pass: PassNo::from_u8(d.pass).unwrap_or(PassNo::First),
                since_ms: d.since_ms,
                lease_until_ms: d.lease_until_ms,
            },
            _ if w.first_pass_at.is_none() => Phase::FirstPass,
            (None, Some(due_ms)) if w.second_started && w.second_pass_at.is_none() => {
                Phase::SecondPass { due_ms }
            }
            (None, Some(due_ms)) if !w.second_started => Phase::AwaitingSecond { due_ms },
            _ if w.second_planned || w.second_started => Phase::Done,
            _ => Phase::FirstPassed,
        };
        EnvPasses {
            phase,
            first_pass_at: w.first_pass_at,
            second_pass_at: w.second_pass_at,
            last_kv_ms: w.last_kv_ms,
        }
    }
}

impl Serialize for EnvPasses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for EnvPasses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Wire::deserialize(d).map(EnvPasses::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DELAY: i64 = 60_000;

    fn arb_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0i64..200_000, any::<bool>())
                .prop_map(|(now_ms, probe)| Event::Settled { now_ms, probe }),
            prop_oneof![Just(PassNo::First), Just(PassNo::Second)]
                .prop_map(|pass| Event::Verified { pass }),
            (0i64..200_000, 0i64..10_000).prop_map(|(now_ms, d)| Event::Lease {
                now_ms,
                until_ms: now_ms + d
            }),
            proptest::option::of(0i64..200_000).prop_map(|due_ms| Event::Plan { due_ms }),
            (0i64..300_000).prop_map(|now_ms| Event::Start { now_ms }),
            Just(Event::NewWork),
            Just(Event::Warm),
            Just(Event::Warmed),
        ]
    }

    /// Obeys [`next`] the way the ledger and the steps do, until the attempt finishes; returns
    /// the number of moves, or `None` when it did not finish within `limit`.
    fn run_to_end(
        passes: &mut [EnvPasses],
        probes: &[bool],
        needs: &[bool],
        limit: usize,
    ) -> Option<usize> {
        let mut now = 300_000;
        for moves in 0..limit {
            now += 1_000;
            let next = next(passes.iter().map(|p| &p.phase));
            for (n, p) in passes.iter_mut().enumerate() {
                let event = match next {
                    Next::Work => Event::Settled {
                        now_ms: now,
                        probe: probes[n],
                    },
                    Next::Verify => match p.phase {
                        Phase::Verifying { pass, .. } => Event::Verified { pass },
                        _ => continue,
                    },
                    Next::Plan => Event::Plan {
                        due_ms: needs[n].then_some(now + DELAY),
                    },
                    Next::SecondPassAt { due_ms } => Event::Start {
                        now_ms: due_ms.max(now),
                    },
                    Next::Warm => Event::Warmed,
                    Next::Finish => return Some(moves),
                };
                p.apply(event, "t");
            }
        }
        None
    }

    #[test]
    fn a_pass_with_a_probe_and_a_second_pass_goes_through_every_phase() {
        let mut p = EnvPasses::default();
        let seen = |p: &EnvPasses| p.phase;
        assert_eq!(
            p.apply(
                Event::Settled {
                    now_ms: 10,
                    probe: true
                },
                "t1"
            ),
            Effect::FirstPassEnded
        );
        assert_eq!(
            seen(&p),
            Phase::Verifying {
                pass: PassNo::First,
                since_ms: 10,
                lease_until_ms: 0
            }
        );
        assert_eq!(
            p.apply(
                Event::Lease {
                    now_ms: 11,
                    until_ms: 50
                },
                ""
            ),
            Effect::Leased
        );
        assert_eq!(
            p.apply(
                Event::Lease {
                    now_ms: 12,
                    until_ms: 60
                },
                ""
            ),
            Effect::None,
            "leased elsewhere"
        );
        assert_eq!(
            p.apply(
                Event::Verified {
                    pass: PassNo::Second
                },
                ""
            ),
            Effect::None,
            "another pass's probe"
        );
        assert_eq!(
            p.apply(
                Event::Verified {
                    pass: PassNo::First
                },
                ""
            ),
            Effect::Verified
        );
        assert_eq!(seen(&p), Phase::FirstPassed);
        assert_eq!(
            p.apply(Event::Plan { due_ms: Some(100) }, ""),
            Effect::SecondScheduled { due_ms: 100 }
        );
        assert_eq!(
            p.apply(Event::Start { now_ms: 99 }, ""),
            Effect::None,
            "not due yet"
        );
        assert_eq!(
            p.apply(Event::Start { now_ms: 100 }, ""),
            Effect::SecondPassStarted
        );
        assert_eq!(
            p.apply(
                Event::Settled {
                    now_ms: 120,
                    probe: true
                },
                "t2"
            ),
            Effect::SecondPassEnded
        );
        assert_eq!(
            p.apply(
                Event::Verified {
                    pass: PassNo::Second
                },
                ""
            ),
            Effect::Verified
        );
        assert_eq!(seen(&p), Phase::Done);
        assert_eq!(
            (p.first_pass_at.as_deref(), p.second_pass_at.as_deref()),
            (Some("t1"), Some("t2"))
        );
    }

    #[test]
    fn next_waits_for_every_probe_before_planning_and_for_the_latest_second_pass() {
        let v = Phase::Verifying {
            pass: PassNo::First,
            since_ms: 0,
            lease_until_ms: 0,
        };
        assert_eq!(next(&[v, Phase::FirstPassed]), Next::Verify);
        assert_eq!(next(&[Phase::FirstPassed, Phase::Done]), Next::Plan);
        let a = Phase::AwaitingSecond { due_ms: 5 };
        let b = Phase::AwaitingSecond { due_ms: 9 };
        assert_eq!(next(&[a, b, Phase::Done]), Next::SecondPassAt { due_ms: 9 });
        assert_eq!(
            next(&[Phase::SecondPass { due_ms: 9 }, Phase::Done]),
            Next::Work
        );
        assert_eq!(next(&[Phase::Done, Phase::Done]), Next::Finish);
        assert_eq!(next(&[Phase::Warming, Phase::Done]), Next::Warm);
        assert_eq!(next(&[Phase::Warmed, Phase::Done]), Next::Finish);
        assert_eq!(next(&[]), Next::Finish);
    }

    #[test]
    fn the_record_fields_are_those_documented() {
        let mut p = EnvPasses::default();
        p.apply(
            Event::Settled {
                now_ms: 10,
                probe: false,
            },
            "t1",
        );
        p.apply(Event::Plan { due_ms: Some(70) }, "");
        p.apply(Event::Start { now_ms: 70 }, "");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"first_pass_at": "t1", "second_due_ms": 70, "second_started": true, "second_pass_at": null, "second_planned": true})
        );
    }

    proptest! {
        /// From any state events can reach, obeying `next` finishes the attempt within a few
        /// moves, and a finished attempt has nothing left in any environment.
        #[test]
        fn every_sequence_ends_terminal_with_no_work_left(
            events in proptest::collection::vec((0usize..3, arb_event()), 0..40),
            probes in proptest::collection::vec(any::<bool>(), 3),
            needs in proptest::collection::vec(any::<bool>(), 3),
        ) {
            let mut passes = vec![EnvPasses::default(); 3];
            for (n, e) in events {
                passes[n].apply(e, "t");
            }
            let moves = run_to_end(&mut passes, &probes, &needs, 12);
            prop_assert!(moves.is_some(), "did not finish: {passes:?}");
            prop_assert!(passes.iter().all(|p| p.phase.is_done()), "work left: {passes:?}");
        }

        /// An event that does not apply (stale, repeated, from another pass) changes nothing,
        /// and applying one event twice is applying it once.
        #[test]
        fn events_that_do_not_apply_change_nothing_and_repeats_are_harmless(
            events in proptest::collection::vec(arb_event(), 0..30),
            last in arb_event(),
        ) {
            let mut p = EnvPasses::default();
            for e in events {
                p.apply(e, "t");
            }
            let (after, effect) = p.phase.on(last);
            if effect == Effect::None && last != Event::NewWork {
                prop_assert_eq!(after, p.phase);
            }
            prop_assert_eq!(after.on(last).0, after);
        }

        /// What the record stores reads back as the same phase.
        #[test]
        fn the_record_fields_read_back_as_the_same_phase(
            events in proptest::collection::vec(arb_event(), 0..30),
        ) {
            let mut p = EnvPasses::default();
            for e in events {
                p.apply(e, "t");
            }
            let back: EnvPasses = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
            prop_assert_eq!(back, p);
        }
    }
}
