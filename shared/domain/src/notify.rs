//! The email an MSP gets when a sync is complete (contract *Notifications*), as pure functions:
//! which runs are emailed ([`should_send`]) and what the email says ([`compose`]). The function
//! that sends it (SES) reads the run, the connector and the names, then calls these — so the rules
//! and the wording are tested here, fast, and never see a token.

use crate::connector::{ConnectorStatus, NotifyOn};
use crate::sync::{RunStatus, RunTicket, SyncRun, TicketState, Trigger};
use std::fmt::Write;

/// At most this many unmapped (account, service) pairs are named; the rest are counted.
pub const MAX_NAMED: usize = 20;

/// Whether the run needs the MSP's attention: it did not succeed, something is unmapped, failed
/// or held, or the connector is disconnected.
pub fn needs_attention(run: &SyncRun, connector: ConnectorStatus) -> bool {
    run.status != RunStatus::Succeeded
        || run.counts.unmapped > 0
        || run.counts.failed > 0
        || run.counts.held > 0
        || connector == ConnectorStatus::Disconnected
}

/// Whether the finished `run` is emailed under `on`: `always` — every scheduled and release run,
/// and any run that needs attention; `problems` — only runs that need attention; `never` — none.
pub fn should_send(on: NotifyOn, run: &SyncRun, connector: ConnectorStatus) -> bool {
    match on {
        NotifyOn::Never => false,
        NotifyOn::Problems => needs_attention(run, connector),
        NotifyOn::Always => {
            matches!(run.trigger, Trigger::Scheduled | Trigger::Release)
                || needs_attention(run, connector)
        }
    }
}

/// The one word of the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    NeedsAttention,
    Held,
    Disconnected,
}

impl Outcome {
    pub fn of(run: &SyncRun, connector: ConnectorStatus) -> Self {
        if connector == ConnectorStatus::Disconnected || run.status == RunStatus::TokenRejected {
            Self::Disconnected
        } else if run.status == RunStatus::Held {
            Self::Held
        } else if needs_attention(run, connector) {
            Self::NeedsAttention
        } else {
            Self::Complete
        }
    }

    /// The outcome in the email's first sentence ("The Gradient sync of X …").
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Complete => "is complete",
            Self::NeedsAttention => "needs attention",
            Self::Held => "was held by the billing guard",
            Self::Disconnected => "stopped: the connector is disconnected",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::NeedsAttention => "needs attention",
            Self::Held => "held",
            Self::Disconnected => "disconnected",
        }
    }
}

/// An unmapped pair as the email names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub account: String,
    pub service: String,
}

/// What the email is made of (read by the sender from the run, the connector and the read model).
#[derive(Debug, Clone)]
pub struct EmailInput<'a> {
    /// The MSP's channel workspace name (from the read model).
    pub workspace_name: &'a str,
    /// The PSA's name as the MSP knows it (`Gradient`).
    pub psa: &'a str,
    pub run: &'a SyncRun,
    pub connector: ConnectorStatus,
    /// The run's first unmapped pairs (at most [`MAX_NAMED`] are shown).
    pub unmapped: &'a [Unmapped],
    /// Where the console's PSA tab is (`CONSOLE_URL`).
    pub console_url: &'a str,
}

/// A composed email: the subject and its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities: a name from the read model is text, never markup.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of the subject or a header: control characters (a CR/LF in a name could inject a
/// header) become spaces.
fn one_line(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The actions the MSP can take, each with the one thing that fixes it.
fn actions(input: &EmailInput<'_>) -> Vec<(String, Vec<String>)> {
    let (run, psa) = (input.run, input.psa);
    let mut out = Vec::new();
    if Outcome::of(run, input.connector) == Outcome::Disconnected {
        out.push((
            format!(
                "{psa} rejected the connector's API token: copy a new one from {psa} and paste it \
                 in the Coro console to reconnect."
            ),
            Vec::new(),
        ));
    }
    if run.status == RunStatus::Held {
        let drop = run.guard.map(|g| g.drop_percent()).unwrap_or_default();
        out.push((
            format!(
                "The billing guard held this sync: the reported total dropped by {drop}%. Review \
                 the counts and release the run in the Coro console if the drop is real."
            ),
            Vec::new(),
        ));
    }
    let unmapped = run.counts.unmapped as usize;
    if unmapped > 0 {
        let mut named: Vec<String> = input
            .unmapped
            .iter()
            .take(MAX_NAMED)
            .map(|u| format!("{} — {}", u.account, u.service))
            .collect();
        let more = unmapped.saturating_sub(named.len());
        if more > 0 {
            named.push(format!("and {more} more"));
        }
        out.push((
            format!(
                "Map these {unmapped} service(s) to PSA companies and products in {psa}'s \
                 Synthesize (Integrations → Coro); the next sync reports them:"
            ),
            named,
        ));
    }
    if run.counts.failed > 0 {
        out.push((
            format!(
                "{} count(s) could not be sent; the next sync sends them again. If this repeats, \
                 see the run in the Coro console.",
                run.counts.failed
            ),
            Vec::new(),
        ));
    }
    out
}

/// Why a run that did not succeed ended so (the run's own bounded reason; a held run's reason is
/// its action instead).
fn reason(run: &SyncRun) -> Option<&str> {
    match run.status {
        RunStatus::Succeeded | RunStatus::Held => None,
        _ => run.reason.as_deref(),
    }
}

/// What became of the PSA tickets the run raised or confirmed: one line each.
fn tickets(input: &EmailInput<'_>) -> Vec<String> {
    let psa = input.psa;
    input
        .run
        .tickets
        .iter()
        .map(|t: &RunTicket| {
            let who = t.account_name.as_deref().unwrap_or(&t.account_id);
            let when = if t.earlier { " (raised by an earlier sync)" } else { "" };
            match t.state {
                TicketState::Created => format!(
                    "{who}: ticket {} created in your PSA{when}",
                    t.detail.as_deref().unwrap_or("")
                ),
                TicketState::Pending => format!(
                    "{who}: {psa} has not made the alert a ticket yet; the next sync asks again{when}"
                ),
                TicketState::Failed => format!(
                    "{who}: the alert did not become a ticket ({}); the next sync raises it again{when}",
                    t.detail.as_deref().unwrap_or("no reason given")
                ),
            }
        })
        .collect()
}

/// The email of a finished run: the subject (the workspace's name and one word of outcome), the
/// counts, what to do (each action with its fix) and the link to the console. Never a token or a
/// token hint: nothing here has one.
pub fn compose(input: &EmailInput<'_>) -> Email {
    let run = input.run;
    let outcome = Outcome::of(run, input.connector);
    let name = one_line(input.workspace_name.trim());
    let subject = format!("{name}: {} sync {}", input.psa, outcome.as_str());
    let c = &run.counts;
    let counts = [
        ("Posted", c.posted),
        ("Unchanged", c.unchanged),
        ("Unmapped", c.unmapped),
        ("Failed", c.failed),
        ("Held", c.held),
        ("Accounts created", c.accounts_created),
    ];
    let actions = actions(input);
    let tickets = tickets(input);

    let mut text = String::new();
    let _ = writeln!(
        text,
        "The {} sync of {name} {} (run {}).\n",
        input.psa,
        outcome.phrase(),
        run.run_id
    );
    if let Some(why) = reason(run) {
        let _ = writeln!(text, "Why: {why}\n");
    }
    for (label, n) in counts {
        let _ = writeln!(text, "{label}: {n}");
    }
    if !actions.is_empty() {
        text.push_str("\nWhat to do:\n");
        for (what, items) in &actions {
            let _ = writeln!(text, "- {what}");
            for i in items {
                let _ = writeln!(text, "    {i}");
            }
        }
    }
    if !tickets.is_empty() {
        text.push_str("\nPSA tickets about unmapped services:\n");
        for t in &tickets {
            let _ = writeln!(text, "- {t}");
        }
    }
    let _ = writeln!(
        text,
        "\nSee the run in the Coro console: {}",
        input.console_url
    );

    let mut html = String::new();
    let _ = write!(
        html,
        "<p>The {} sync of <strong>{}</strong> {} (run {}).</p>",
        escape_html(input.psa),
        escape_html(&name),
        outcome.phrase(),
        escape_html(run.run_id.as_str())
    );
    if let Some(why) = reason(run) {
        let _ = write!(html, "<p>Why: {}</p>", escape_html(why));
    }
    html.push_str("<table>");
    for (label, n) in counts {
        let _ = write!(html, "<tr><td>{label}</td><td>{n}</td></tr>");
    }
    html.push_str("</table>");
    if !actions.is_empty() {
        html.push_str("<p>What to do:</p><ul>");
        for (what, items) in &actions {
            let _ = write!(html, "<li>{}", escape_html(what));
            if !items.is_empty() {
                html.push_str("<ul>");
                for i in items {
                    let _ = write!(html, "<li>{}</li>", escape_html(i));
                }
                html.push_str("</ul>");
            }
            html.push_str("</li>");
        }
        html.push_str("</ul>");
    }
    if !tickets.is_empty() {
        html.push_str("<p>PSA tickets about unmapped services:</p><ul>");
        for t in &tickets {
            let _ = write!(html, "<li>{}</li>", escape_html(t));
        }
        html.push_str("</ul>");
    }
    let _ = write!(
        html,
        "<p><a href=\"{}\">See the run in the Coro console</a></p>",
        escape_html(input.console_url)
    );
    Email {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConnectorType, RunId, WorkspaceId};
    use crate::sync::GuardFigures;

    fn run(trigger: Trigger, status: RunStatus) -> SyncRun {
        let connector = crate::Connector::new(
            ConnectorType::Gradient,
            WorkspaceId::parse("msp").unwrap(),
            crate::UserId::parse("u1").unwrap(),
            "…abcd".into(),
            Default::default(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let mut r = crate::usecase::sync::new_run(
            &connector,
            RunId::parse("20261206T050000.000Z-abc").unwrap(),
            trigger,
            None,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        r.status = status;
        r.counts.posted = 12;
        r.counts.unchanged = 30;
        r
    }

    fn input<'a>(r: &'a SyncRun, unmapped: &'a [Unmapped], c: ConnectorStatus) -> EmailInput<'a> {
        EmailInput {
            workspace_name: "Acme <MSP> & Co",
            psa: "Gradient",
            run: r,
            connector: c,
            unmapped,
            console_url: "https://console.example/psa?tab=gradient&x=\"1\"",
        }
    }

    #[test]
    fn which_runs_are_emailed() {
        use ConnectorStatus::{Connected as C, Disconnected as D};
        use NotifyOn::*;
        let ok_scheduled = run(Trigger::Scheduled, RunStatus::Succeeded);
        let ok_on_demand = run(Trigger::OnDemand, RunStatus::Succeeded);
        let ok_release = run(Trigger::Release, RunStatus::Succeeded);
        let mut unmapped = run(Trigger::OnDemand, RunStatus::Succeeded);
        unmapped.counts.unmapped = 1;
        let failed = run(Trigger::OnDemand, RunStatus::PartiallyFailed);
        let held = run(Trigger::Scheduled, RunStatus::Held);
        assert!(should_send(Always, &ok_scheduled, C));
        assert!(should_send(Always, &ok_release, C));
        assert!(!should_send(Always, &ok_on_demand, C), "an admin's own run");
        assert!(should_send(Always, &unmapped, C));
        assert!(should_send(Always, &ok_on_demand, D), "disconnected");
        assert!(!should_send(Problems, &ok_scheduled, C));
        assert!(should_send(Problems, &failed, C));
        assert!(should_send(Problems, &held, C));
        assert!(should_send(Problems, &unmapped, C));
        for r in [&ok_scheduled, &failed, &held, &unmapped] {
            assert!(!should_send(Never, r, D));
        }
    }

    #[test]
    fn the_outcome_word_puts_the_most_urgent_first() {
        use ConnectorStatus::{Connected as C, Disconnected as D};
        let ok = run(Trigger::Scheduled, RunStatus::Succeeded);
        assert_eq!(Outcome::of(&ok, C), Outcome::Complete);
        assert_eq!(Outcome::of(&ok, D), Outcome::Disconnected);
        let rejected = run(Trigger::Scheduled, RunStatus::TokenRejected);
        assert_eq!(Outcome::of(&rejected, C), Outcome::Disconnected);
        let held = run(Trigger::Scheduled, RunStatus::Held);
        assert_eq!(Outcome::of(&held, C), Outcome::Held);
        let failed = run(Trigger::Scheduled, RunStatus::Failed);
        assert_eq!(Outcome::of(&failed, C), Outcome::NeedsAttention);
    }

    #[test]
    fn a_complete_run_says_its_counts_and_links_the_console() {
        let r = run(Trigger::Scheduled, RunStatus::Succeeded);
        let e = compose(&input(&r, &[], ConnectorStatus::Connected));
        assert_eq!(e.subject, "Acme <MSP> & Co: Gradient sync complete");
        assert!(
            e.text
                .starts_with("The Gradient sync of Acme <MSP> & Co is complete (run ")
        );
        assert!(e.text.contains("Posted: 12\nUnchanged: 30\n"), "{}", e.text);
        assert!(!e.text.contains("What to do"));
        assert!(e.text.contains("https://console.example/psa?tab=gradient"));
        assert!(
            e.html
                .contains("<strong>Acme &lt;MSP&gt; &amp; Co</strong>"),
            "{}",
            e.html
        );
        assert!(
            e.html
                .contains("href=\"https://console.example/psa?tab=gradient&amp;x=&quot;1&quot;\"")
        );
        assert!(
            !e.html.contains("<MSP>"),
            "names are escaped in the HTML part"
        );
    }

    #[test]
    fn each_problem_comes_with_its_fix_and_unmapped_pairs_are_named_up_to_twenty() {
        let mut r = run(Trigger::Scheduled, RunStatus::PartiallyFailed);
        r.counts.unmapped = 23;
        r.counts.failed = 2;
        let pairs: Vec<Unmapped> = (0..23)
            .map(|i| Unmapped {
                account: format!("Customer <{i}>"),
                service: "EDR".into(),
            })
            .collect();
        let e = compose(&input(&r, &pairs, ConnectorStatus::Connected));
        assert_eq!(e.subject, "Acme <MSP> & Co: Gradient sync needs attention");
        assert!(e.text.contains("Map these 23 service(s)"), "{}", e.text);
        assert!(e.text.contains("Customer <19> — EDR"));
        assert!(!e.text.contains("Customer <20>"), "at most 20 named");
        assert!(e.text.contains("and 3 more"));
        assert!(e.text.contains("2 count(s) could not be sent"));
        assert!(e.html.contains("Customer &lt;19&gt; — EDR"));

        let mut held = run(Trigger::Scheduled, RunStatus::Held);
        held.guard = Some(GuardFigures {
            before: 200,
            after: 50,
        });
        let e = compose(&input(&held, &[], ConnectorStatus::Connected));
        assert!(e.subject.ends_with("sync held"));
        assert!(e.text.contains("dropped by 75%"), "{}", e.text);
        assert!(e.text.contains("release the run"));

        let mut alerted = run(Trigger::Scheduled, RunStatus::Succeeded);
        alerted.tickets = vec![
            RunTicket {
                account_id: "a1".into(),
                account_name: Some("Customer <1>".into()),
                state: TicketState::Created,
                detail: Some("T-77".into()),
                earlier: false,
            },
            RunTicket {
                account_id: "a2".into(),
                account_name: None,
                state: TicketState::Failed,
                detail: Some("no PSA company".into()),
                earlier: true,
            },
        ];
        let e = compose(&input(&alerted, &[], ConnectorStatus::Connected));
        assert!(
            e.text
                .contains("- Customer <1>: ticket T-77 created in your PSA\n"),
            "{}",
            e.text
        );
        assert!(e.text.contains(
            "- a2: the alert did not become a ticket (no PSA company); the next sync raises it \
             again (raised by an earlier sync)"
        ));
        assert!(
            e.html
                .contains("<li>Customer &lt;1&gt;: ticket T-77 created")
        );

        let rejected = run(Trigger::Scheduled, RunStatus::TokenRejected);
        let e = compose(&input(&rejected, &[], ConnectorStatus::Disconnected));
        assert!(e.subject.ends_with("sync disconnected"));
        assert!(e.text.contains("paste it in the Coro console to reconnect"));
    }

    #[test]
    fn a_name_cannot_inject_a_header_line() {
        let r = run(Trigger::Scheduled, RunStatus::Succeeded);
        let mut i = input(&r, &[], ConnectorStatus::Connected);
        i.workspace_name = "Acme\r\nBcc: everyone@example.com";
        let e = compose(&i);
        assert!(!e.subject.contains('\n') && !e.subject.contains('\r'));
    }
}
