//! Mail tests: SMTP against the fake server in `fake_smtp.rs`, the retry queue, the outbox.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;

use tokio::net::TcpListener;

use super::fake_smtp::*;
use super::*;

const SUBJECT: &str = "Przywrócenie hasła — zażółć gęślą jaźń";
const TEXT: &str = "Dzień dobry,\r\n\r\nŻółw śpi. Łódź, Gdańsk, Kraków.\r\n\
                    .kropka na początku wiersza\r\nZAŻÓŁĆ GĘŚLĄ JAŹŃ\r\n";

fn polish_mail() -> OutgoingMail {
    OutgoingMail {
        to: "Paweł Żak <pawel@example.pl>".to_owned(),
        subject: SUBJECT.to_owned(),
        text: TEXT.to_owned(),
        language: "pl",
        attachments: Vec::new(),
    }
}

fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

fn smtp_config(addr: SocketAddr) -> MailConfig {
    MailConfig {
        transport: MailTransport::Smtp,
        from: "e-BOK Przykład-Net <ebok@przyklad.pl>".to_owned(),
        reply_to: Some("BOK <bok@przyklad.pl>".to_owned()),
        smtp: SmtpConfig {
            host: Some(addr.ip().to_string()),
            port: Some(addr.port()),
            tls: SmtpTls::None,
            username: Some("ebok".to_owned()),
            password: Some("tajne hasło ąę".to_owned()),
            timeout_secs: 5,
            ..SmtpConfig::default()
        },
        ..MailConfig::default()
    }
}

fn queue_files(mailer: &Mailer) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(mailer.queue_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_queue_file(p))
        .collect();
    files.sort();
    files
}

/// Wait until `cond` holds (through [`ebok_testkit::eventually`]: 10 s at most).
async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    ebok_testkit::eventually(what, || std::future::ready(cond())).await;
}

/// Failed attempts recorded in the queue file `path` (0 while it cannot be read).
async fn attempts(path: &Path) -> u32 {
    read_queue_file(path)
        .await
        .map_or(0, |(meta, _)| meta.attempts)
}

/// Checks the headers and body of a message as a mail reader would decode them.
fn assert_polish_message(raw: &[u8]) {
    let parsed = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("message parses");
    assert_eq!(parsed.subject(), Some(SUBJECT));
    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.address(), Some("ebok@przyklad.pl"));
    assert_eq!(from.name(), Some("e-BOK Przykład-Net"));
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("pawel@example.pl"));
    assert_eq!(to.name(), Some("Paweł Żak"));
    let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
    assert_eq!(reply_to.address(), Some("bok@przyklad.pl"));
    assert_eq!(
        parsed.header_raw("Content-Language").map(str::trim),
        Some("pl")
    );
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let message_id = parsed.message_id().expect("Message-ID");
    assert!(message_id.ends_with("@przyklad.pl"), "{message_id}");
    assert!(parsed.date().is_some(), "Date");
    let body = parsed.body_text(0).expect("text body");
    assert_eq!(body.replace("\r\n", "\n"), TEXT.replace("\r\n", "\n"));
    // The raw headers themselves are 7-bit: the Polish subject is encoded, not raw UTF-8.
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(raw[..head_end].is_ascii());
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("mime-version: 1.0"), "{head}");
}

#[tokio::test]
async fn smtp_exchange_with_auth_delivers_polish_mail() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
    let state = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(&smtp_config(addr), state.path()).unwrap();
    assert_eq!(mailer.outbox_dir(), None);

    mailer.send(&polish_mail()).await.expect("sent");

    let got = seen.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(
        m.auth,
        Some(("ebok".to_owned(), "tajne hasło ąę".to_owned()))
    );
    assert_eq!(m.mail_from, "ebok@przyklad.pl");
    assert_eq!(m.rcpt_to, vec!["pawel@example.pl".to_owned()]);
    assert_polish_message(&m.data);

    // Mostly ASCII text goes as 7bit or quoted-printable, line by line: lines that begin
    // with a dot, and a line that is only a dot, must survive the SMTP dot-stuffing.
    let dotted = "Linia 1\r\n.\r\n..dwie kropki\r\n.kropka\r\nKoniec, dziękujemy.\r\n";
    let mail = OutgoingMail {
        to: "jan@example.pl".to_owned(),
        subject: "Hello".to_owned(),
        text: dotted.to_owned(),
        language: "en",
        attachments: Vec::new(),
    };
    mailer.send(&mail).await.expect("sent");
    let got = seen.messages();
    assert_eq!(got.len(), 2);
    let parsed = mail_parser::MessageParser::default()
        .parse(&got[1].data)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Hello"));
    assert_eq!(
        parsed.body_text(0).unwrap().replace("\r\n", "\n"),
        dotted.replace("\r\n", "\n")
    );
    assert!(queue_files(&mailer).is_empty());
}

#[tokio::test]
async fn starttls_is_required_not_opportunistic() {
    // The fake server does not offer STARTTLS: nothing may go out in plain text.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
    let state = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(addr);
    cfg.smtp.tls = SmtpTls::Starttls;
    let mailer = Mailer::new(&cfg, state.path()).unwrap();
    let err = mailer.send(&polish_mail()).await.unwrap_err();
    assert!(err.is_queued(), "{err}");
    assert_eq!(
        seen.auth_commands.load(Ordering::SeqCst),
        0,
        "password sent in clear"
    );
    assert_eq!(seen.mail_commands.load(Ordering::SeqCst), 0);
    assert!(seen.messages().is_empty());
    assert_eq!(queue_files(&mailer).len(), 1);
}

#[tokio::test]
async fn smtp_password_file_is_read_and_trimmed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("smtp-password");
    std::fs::write(&file, "  z pliku\n").unwrap();
    let mut cfg = smtp_config(addr);
    cfg.smtp.password = None;
    cfg.smtp.password_file = Some(file);
    let mailer = Mailer::new(&cfg, state.path()).unwrap();
    mailer.send(&polish_mail()).await.expect("sent");
    assert_eq!(
        seen.messages()[0].auth,
        Some(("ebok".to_owned(), "z pliku".to_owned()))
    );
}

#[tokio::test]
async fn busy_server_queues_then_retry_delivers() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mode = Arc::new(AtomicU8::new(BUSY));
    let seen = fake_smtp(listener, mode.clone());
    let state = tempfile::tempdir().unwrap();
    let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();

    let err = mailer.send(&polish_mail()).await.unwrap_err();
    assert!(err.is_queued(), "{err}");
    assert!(err.to_string().contains("451"), "{err}");
    let files = queue_files(&mailer);
    assert_eq!(files.len(), 1);
    assert_eq!(mailer.queue_depth(), 1);
    assert!(seen.messages().is_empty());

    let retry = mailer.spawn_retry();
    // The retry task keeps trying while the server is busy, and the message stays queued.
    wait_for("a retry attempt", || {
        seen.mail_commands.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert_eq!(queue_files(&mailer), files);

    mode.store(ACCEPT, Ordering::SeqCst);
    wait_for("delivery", || seen.messages().len() == 1).await;
    wait_for("empty queue", || queue_files(&mailer).is_empty()).await;
    // The gauge follows the file removal a moment later.
    wait_for("queue depth 0", || mailer.queue_depth() == 0).await;
    let m = &seen.messages()[0];
    assert_eq!(m.rcpt_to, vec!["pawel@example.pl".to_owned()]);
    assert_polish_message(&m.data);
    retry.abort();

    let text = metrics.render();
    assert!(text.contains("ebok_mail_sent_total 1"), "{text}");
    assert!(text.contains("ebok_mail_queue_depth 0"), "{text}");
    let failures: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ebok_mail_failures_total "))
        .expect("failures counter")
        .parse()
        .unwrap();
    assert!(failures >= 3, "{text}");
}

#[tokio::test]
async fn refused_connection_queues_then_retry_delivers_after_restart() {
    // A port with nobody listening: bind, note the port, close.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let state = tempfile::tempdir().unwrap();
    let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();
    let err = mailer.send(&polish_mail()).await.unwrap_err();
    assert!(err.is_queued(), "{err}");
    assert_eq!(queue_files(&mailer).len(), 1);

    // A fresh Mailer on the same state directory picks up the queue (as after a restart).
    drop(mailer);
    let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();
    assert_eq!(mailer.queue_depth(), 1);
    let queued = queue_files(&mailer).remove(0);
    assert_eq!(attempts(&queued).await, 1, "the direct attempt");
    let retry = mailer.spawn_retry();
    // The retry task has tried once more (and recorded it) with nobody listening yet.
    let queued = &queued;
    ebok_testkit::eventually("a failed retry recorded", || async move {
        attempts(queued).await >= 2
    })
    .await;
    assert_eq!(queue_files(&mailer).len(), 1, "nothing to deliver to yet");

    let listener = TcpListener::bind(addr).await.unwrap();
    let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
    wait_for("empty queue", || queue_files(&mailer).is_empty()).await;
    assert_eq!(seen.messages().len(), 1);
    assert_polish_message(&seen.messages()[0].data);
    retry.abort();
}

#[tokio::test]
async fn permanent_rejection_ends_in_failed_folder() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = fake_smtp(listener, Arc::new(AtomicU8::new(REJECT)));
    let state = tempfile::tempdir().unwrap();
    let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();
    let err = mailer.send(&polish_mail()).await.unwrap_err();
    assert!(err.is_queued(), "{err}");
    let retry = mailer.spawn_retry();
    let failed = state.path().join("mail-queue/failed");
    wait_for("the message in failed/", || {
        std::fs::read_dir(&failed).unwrap().count() == 1
    })
    .await;
    assert!(queue_files(&mailer).is_empty());
    assert_eq!(
        seen.mail_commands.load(Ordering::SeqCst),
        u64::from(MAX_PERMANENT_ATTEMPTS)
    );
    let kept = std::fs::read_dir(&failed).unwrap().next().unwrap().unwrap();
    let (meta, raw) = read_queue_file(&kept.path()).await.unwrap();
    assert!(meta.last_error.contains("550"), "{}", meta.last_error);
    assert_polish_message(&raw);
    retry.abort();
}

#[tokio::test]
async fn second_retry_task_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(&MailConfig::default(), state.path()).unwrap();
    let first = mailer.spawn_retry();
    let second = mailer.clone().spawn_retry();
    second.await.unwrap();
    assert!(!first.is_finished());
    first.abort();
}

#[tokio::test]
async fn outbox_writes_parsable_eml() {
    let state = tempfile::tempdir().unwrap();
    let cfg = MailConfig {
        from: "e-BOK Przykład-Net <ebok@przyklad.pl>".to_owned(),
        reply_to: Some("BOK <bok@przyklad.pl>".to_owned()),
        ..MailConfig::default()
    };
    let mailer = Mailer::new(&cfg, state.path()).unwrap();
    let outbox = state.path().join("outbox");
    assert_eq!(mailer.outbox_dir(), Some(outbox.as_path()));
    assert!(outbox.is_dir());

    mailer.send(&polish_mail()).await.unwrap();
    let mut english = polish_mail();
    english.language = "en";
    mailer.send(&english).await.unwrap();

    let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.extension().unwrap() == "eml"));
    // Two mails written in the same millisecond may sort either way by name: tell them
    // apart by their language.
    let mut mails: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    mails.sort_by_key(|m| {
        let parsed = mail_parser::MessageParser::default().parse(m).unwrap();
        parsed
            .header_raw("Content-Language")
            .map(|l| l.trim() == "en")
    });
    let raw = mails[0].clone();
    assert_polish_message(&raw);
    let second = mails[1].clone();
    let parsed = mail_parser::MessageParser::default()
        .parse(&second)
        .unwrap();
    assert_eq!(
        parsed.header_raw("Content-Language").map(str::trim),
        Some("en")
    );
    assert_ne!(
        parsed.message_id(),
        mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap()
            .message_id()
    );
}

#[tokio::test]
async fn outbox_dir_from_config_is_created() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("deep/er/outbox");
    let cfg = MailConfig {
        outbox_dir: Some(dir.clone()),
        ..MailConfig::default()
    };
    let mailer = Mailer::new(&cfg, state.path()).unwrap();
    mailer.send(&polish_mail()).await.unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[tokio::test]
async fn bad_recipient_is_an_error() {
    let state = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(&MailConfig::default(), state.path()).unwrap();
    let mut mail = polish_mail();
    mail.to = "nie-adres".to_owned();
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Recipient { .. }), "{err}");
}

#[test]
fn config_parses_from_toml_with_defaults() {
    let cfg: MailConfig = toml::from_str(
        r#"
        transport = "smtp"
        from = "e-BOK <ebok@example.pl>"
        [smtp]
        host = "smtp.example.pl"
        tls = "tls"
        username = "ebok"
        password = "sekret"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.transport, MailTransport::Smtp);
    assert_eq!(cfg.smtp.tls, SmtpTls::Tls);
    assert_eq!(cfg.smtp.effective_port(), 465);
    assert_eq!(cfg.smtp.timeout_secs, 10);
    cfg.check().unwrap();
    let default = MailConfig::default();
    assert_eq!(default.transport, MailTransport::Outbox);
    assert_eq!(default.smtp.effective_port(), 587);
    default.check().unwrap();
    assert!(toml::from_str::<MailConfig>("smtp = { hots = \"x\" }").is_err());
    assert!(toml::from_str::<MailConfig>("transport = \"sendmail\"").is_err());
}

#[test]
fn password_never_in_debug() {
    let cfg = smtp_config("127.0.0.1:25".parse().unwrap());
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("tajne"), "{shown}");
    assert!(shown.contains("<hidden>"), "{shown}");
    let state = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let mailer = Mailer::new(&cfg, state.path()).unwrap();
    let shown = format!("{mailer:?}");
    assert!(!shown.contains("tajne"), "{shown}");
}

#[test]
fn check_names_the_key() {
    let state = tempfile::tempdir().unwrap();
    let smtp = || MailConfig {
        transport: MailTransport::Smtp,
        smtp: SmtpConfig {
            host: Some("smtp.example.pl".to_owned()),
            ..SmtpConfig::default()
        },
        ..MailConfig::default()
    };
    let key = |cfg: MailConfig| cfg.check().unwrap_err().key;
    smtp().check().unwrap();

    let mut c = smtp();
    c.smtp.host = None;
    assert_eq!(key(c), "mail.smtp.host");
    let mut c = smtp();
    c.smtp.host = Some("  ".to_owned());
    let err = c.check().unwrap_err();
    assert_eq!(err.key, "mail.smtp.host");
    assert!(err.to_string().starts_with("mail.smtp.host: "), "{err}");

    assert_eq!(
        key(MailConfig {
            from: "not an address".to_owned(),
            ..MailConfig::default()
        }),
        "mail.from"
    );
    assert_eq!(
        key(MailConfig {
            reply_to: Some("bok@".to_owned()),
            ..MailConfig::default()
        }),
        "mail.reply_to"
    );

    let mut c = smtp();
    c.smtp.username = Some("u".to_owned());
    c.smtp.password = Some("p".to_owned());
    c.smtp.password_file = Some(state.path().join("pw"));
    assert_eq!(key(c), "mail.smtp.password_file");

    let mut c = smtp();
    c.smtp.username = Some("u".to_owned());
    c.smtp.password_file = Some(state.path().join("missing"));
    let err = c.check().unwrap_err();
    assert_eq!(err.key, "mail.smtp.password_file");
    assert!(err.reason.contains("cannot read"), "{err}");

    let mut c = smtp();
    c.smtp.username = Some("u".to_owned());
    assert_eq!(key(c), "mail.smtp.password");

    let mut c = smtp();
    c.smtp.password = Some("p".to_owned());
    assert_eq!(key(c), "mail.smtp.username");

    let mut c = smtp();
    c.smtp.timeout_secs = 0;
    assert_eq!(key(c), "mail.smtp.timeout_secs");

    let mut c = smtp();
    c.smtp.port = Some(0);
    assert_eq!(key(c), "mail.smtp.port");

    let mut c = smtp();
    c.retry_max_secs = 1;
    assert_eq!(key(c), "mail.retry_max_secs");

    // Mailer::new refuses the same configuration with the same message.
    let mut c = smtp();
    c.smtp.host = None;
    let err = Mailer::new(&c, state.path()).unwrap_err();
    assert!(err.to_string().contains("mail.smtp.host"), "{err}");
}
