//! What apply reports while it runs: typed events (an action starts, finishes or fails, a
//! client says something, a client is done) and the three ways of showing them.
//!
//! - [`Lines`]: one plain line per event, as apply always printed (`acme: apply 2 migrations …`,
//!   `acme: apply 2 migrations done (1.3s)`). For CI and anything that is not a terminal.
//! - [`Live`]: on a terminal, an overall bar (actions done of planned, clients done, elapsed,
//!   ETA) under one line per running client with its current step; a failure is printed above
//!   the bars and stays; everything is cleared before the summary table.
//! - [`JsonLines`]: `--log-format json`, one JSON object per event for log shippers.
//!
//! Events are sent by `apply` (per action and client) and by the engine (the start of a run and
//! fleet-wide lines such as the frontend install).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Where an event stands in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The run starts (`message`: how many clients and actions).
    Begin,
    /// An action starts.
    Start,
    /// An action finished.
    Done,
    /// An action failed (or was deferred); `message` has the error.
    Failed,
    /// An action was not started: the client's wave halted (its failures exceeded the wave's
    /// budget). Not a failure; `message` says why.
    Stopped,
    /// Something a client's step says on the way (a wait, a skipped migration).
    Note,
    /// A client is done (`outcome`, `duration`: the client's whole time).
    Client,
    /// A line about the whole run (`client` is absent), such as the frontend install.
    Log,
}

/// How an action or a client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    /// Parked on a vendor's long wait when the run ended; the next apply resumes it.
    Deferred,
    /// Not continued: the client's wave halted before its next step.
    Stopped,
}

/// One thing that happened during apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub client: Option<String>,
    /// The action's headline (`plan::describe`).
    pub action: Option<String>,
    pub phase: Phase,
    pub duration: Option<Duration>,
    pub outcome: Option<Outcome>,
    pub message: Option<String>,
}

impl Event {
    pub fn new(phase: Phase) -> Event {
        Event {
            client: None,
            action: None,
            phase,
            duration: None,
            outcome: None,
            message: None,
        }
    }
    pub fn client(mut self, c: &str) -> Event {
        self.client = Some(c.to_string());
        self
    }
    pub fn action(mut self, a: &str) -> Event {
        self.action = Some(a.to_string());
        self
    }
    pub fn duration(mut self, d: Duration) -> Event {
        self.duration = Some(d);
        self
    }
    pub fn outcome(mut self, o: Outcome) -> Event {
        self.outcome = Some(o);
        self
    }
    pub fn message(mut self, m: impl Into<String>) -> Event {
        self.message = Some(m.into());
        self
    }

    /// The plain line of the event, as apply has always printed it; `None` for events that
    /// never had one (a client finishing is in the summary table).
    pub fn line(&self) -> Option<String> {
        let client = self.client.as_deref().unwrap_or("intelli");
        let action = self.action.as_deref().unwrap_or("");
        let secs = self.duration.map_or(0.0, |d| d.as_secs_f64());
        let message = self.message.as_deref().unwrap_or("");
        match self.phase {
            Phase::Begin | Phase::Client => None,
            Phase::Start => Some(format!("{client}: {action} …")),
            Phase::Done => Some(format!("{client}: {action} done ({secs:.1}s)")),
            Phase::Failed => Some(format!(
                "{client}: {action} {} ({secs:.1}s): {message}",
                match self.outcome {
                    Some(Outcome::Deferred) => "DEFERRED",
                    Some(Outcome::Ok | Outcome::Failed | Outcome::Stopped) | None => "FAILED",
                }
            )),
            Phase::Stopped => Some(format!("{client}: {action} STOPPED: {message}")),
            Phase::Note => Some(format!("{client}: {message}")),
            Phase::Log => Some(message.to_string()),
        }
    }

    /// The event as one JSON object (`--log-format json`): every key always present.
    pub fn json(&self) -> String {
        let value = serde_json::json!({
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "client": self.client,
            "action": self.action,
            "phase": self.phase,
            "duration_ms": self.duration.map(|d| d.as_millis() as u64),
            "outcome": self.outcome,
            "message": self.message,
        });
        value.to_string()
    }
}

/// Something that shows apply's events.
pub trait Progress: Send + Sync {
    /// A run of `clients` clients with `actions` planned actions starts.
    fn begin(&self, clients: usize, actions: usize);
    fn event(&self, event: &Event);
    /// The run is over: clear what is drawn before the summary is printed.
    fn finish(&self);
    /// A line about the whole run.
    fn log(&self, line: &str) {
        self.event(&Event::new(Phase::Log).message(line));
    }
}

/// One plain line per event, handed to a function (stderr in the CLI).
pub struct Lines<F>(pub F);

impl<F: Fn(&str) + Send + Sync> Progress for Lines<F> {
    fn begin(&self, _clients: usize, _actions: usize) {}
    fn event(&self, event: &Event) {
        if let Some(line) = event.line() {
            (self.0)(&line);
        }
    }
    fn finish(&self) {}
}

/// One JSON object per event on stderr.
pub struct JsonLines;

impl Progress for JsonLines {
    fn begin(&self, clients: usize, actions: usize) {
        self.event(
            &Event::new(Phase::Begin)
                .message(format!("{clients} client(s), {actions} planned action(s)")),
        );
    }
    fn event(&self, event: &Event) {
        eprintln!("{}", event.json());
    }
    fn finish(&self) {}
}

/// The live display on a terminal (see the module's documentation). A run in waves begins
/// and finishes once per wave: each wave gets a fresh overall line.
pub struct Live {
    multi: indicatif::MultiProgress,
    color: bool,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    /// The overall line, between `begin` and `finish`.
    overall: Option<indicatif::ProgressBar>,
    clients: usize,
    clients_done: usize,
    failed: usize,
    /// The line of each client that is running, and its current step.
    running: HashMap<String, (indicatif::ProgressBar, String)>,
}

const TICK: Duration = Duration::from_millis(120);

impl Live {
    /// Drawn on stderr; `color` picks coloured templates.
    pub fn new(color: bool) -> Live {
        let multi = indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        Live {
            multi,
            color,
            state: Mutex::new(LiveState::default()),
        }
    }

    fn overall_line(&self) -> indicatif::ProgressBar {
        let template = if self.color {
            "{spinner:.cyan} {elapsed_precise} [{bar:30.green/blue}] {pos}/{len} actions · {msg} · ETA {eta}"
        } else {
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} actions · {msg} · ETA {eta}"
        };
        let overall = self.multi.add(indicatif::ProgressBar::new(0));
        overall.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.enable_steady_tick(TICK);
        overall
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn client_line(&self, overall: Option<&indicatif::ProgressBar>) -> indicatif::ProgressBar {
        let template = if self.color {
            "  {spinner:.yellow} {prefix:.bold}: {msg}"
        } else {
            "  {spinner} {prefix}: {msg}"
        };
        let spinner = indicatif::ProgressBar::new_spinner();
        let bar = match overall {
            Some(o) => self.multi.insert_before(o, spinner),
            None => self.multi.add(spinner),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(TICK);
        bar
    }

    fn overall_message(&self, s: &LiveState) {
        let Some(overall) = &s.overall else {
            return;
        };
        let failed = if s.failed > 0 {
            self.paint("31", &format!(", {} failed", s.failed))
        } else {
            String::new()
        };
        overall.set_message(format!(
            "clients {}/{} done{failed}",
            s.clients_done, s.clients
        ));
    }
}

impl Progress for Live {
    fn begin(&self, clients: usize, actions: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.overall.is_none() {
            s.overall = Some(self.overall_line());
            s.clients = 0;
            s.clients_done = 0;
            s.failed = 0;
        }
        s.clients += clients;
        if let Some(o) = &s.overall {
            o.inc_length(actions as u64);
        }
        self.overall_message(&s);
    }

    fn event(&self, event: &Event) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let client = event.client.clone().unwrap_or_default();
        let action = event.action.as_deref().unwrap_or("");
        match event.phase {
            Phase::Begin => {}
            Phase::Start => {
                if !s.running.contains_key(&client) {
                    let bar = self.client_line(s.overall.as_ref());
                    bar.set_prefix(client.clone());
                    s.running.insert(client.clone(), (bar, String::new()));
                }
                if let Some((bar, step)) = s.running.get_mut(&client) {
                    *step = action.to_string();
                    bar.set_message(format!("{action} …"));
                }
            }
            Phase::Note => {
                if let Some((bar, step)) = s.running.get(&client) {
                    let note = event.message.as_deref().unwrap_or("").trim();
                    bar.set_message(format!("{step} … {note}"));
                }
            }
            Phase::Done => {
                if let Some(o) = &s.overall {
                    // A re-plan can add actions the plan did not count.
                    if o.position() + 1 > o.length().unwrap_or(0) {
                        o.inc_length(1);
                    }
                    o.inc(1);
                }
            }
            Phase::Failed => {
                let line = event.line().unwrap_or_default();
                let mark = match event.outcome {
                    Some(Outcome::Deferred) => self.paint("33", "…"),
                    Some(Outcome::Ok | Outcome::Failed | Outcome::Stopped) | None => {
                        self.paint("31", "✗")
                    }
                };
                // Printed above the bars, so it stays on the screen.
                self.multi.println(format!("{mark} {line}")).ok();
            }
            Phase::Stopped => {
                let line = event.line().unwrap_or_default();
                self.multi
                    .println(format!("{} {line}", self.paint("33", "■")))
                    .ok();
            }
            Phase::Client => {
                s.clients_done += 1;
                if matches!(event.outcome, Some(Outcome::Failed | Outcome::Deferred)) {
                    s.failed += 1;
                }
                if let Some((bar, _)) = s.running.remove(&client) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.overall_message(&s);
            }
            Phase::Log => {
                self.multi
                    .println(event.message.as_deref().unwrap_or(""))
                    .ok();
            }
        }
    }

    fn finish(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (_, (bar, _)) in s.running.drain() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if let Some(o) = s.overall.take() {
            o.finish_and_clear();
            self.multi.remove(&o);
        }
        self.multi.clear().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_are_the_log_of_before() {
        let start = Event::new(Phase::Start)
            .client("acme")
            .action("apply 2 migrations");
        assert_eq!(start.line().as_deref(), Some("acme: apply 2 migrations …"));
        let done = Event::new(Phase::Done)
            .client("acme")
            .action("apply 2 migrations")
            .duration(Duration::from_millis(1_340))
            .outcome(Outcome::Ok);
        assert_eq!(
            done.line().as_deref(),
            Some("acme: apply 2 migrations done (1.3s)")
        );
        let note = Event::new(Phase::Note)
            .client("acme")
            .message("  project x is COMING_UP; waiting");
        assert_eq!(
            note.line().as_deref(),
            Some("acme:   project x is COMING_UP; waiting")
        );
        let failed = Event::new(Phase::Failed)
            .client("acme")
            .action("deploy")
            .duration(Duration::from_millis(200))
            .outcome(Outcome::Deferred)
            .message("rate limited");
        assert_eq!(
            failed.line().as_deref(),
            Some("acme: deploy DEFERRED (0.2s): rate limited")
        );
        let stopped = Event::new(Phase::Stopped)
            .client("acme")
            .action("deploy")
            .message("not started: the wave halted");
        assert_eq!(
            stopped.line().as_deref(),
            Some("acme: deploy STOPPED: not started: the wave halted")
        );
        assert_eq!(Event::new(Phase::Client).client("acme").line(), None);
    }

    #[test]
    fn json_events_have_every_key() {
        let e = Event::new(Phase::Done)
            .client("acme")
            .action("deploy")
            .duration(Duration::from_millis(1_500))
            .outcome(Outcome::Ok);
        let v: serde_json::Value = serde_json::from_str(&e.json()).expect("json");
        assert_eq!(v["client"], "acme");
        assert_eq!(v["action"], "deploy");
        assert_eq!(v["phase"], "done");
        assert_eq!(v["duration_ms"], 1_500);
        assert_eq!(v["outcome"], "ok");
        assert!(v["message"].is_null());
        assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
        let log: serde_json::Value =
            serde_json::from_str(&Event::new(Phase::Log).message("frontend: npm ci …").json())
                .expect("json");
        assert!(log["client"].is_null());
        assert_eq!(log["phase"], "log");
    }
}
