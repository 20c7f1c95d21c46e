//! The names of the setting matrix's dimensions (`matrix::Dim`): a case's settings that
//! vary, and the trigger, notification addresses and server-side choices. Kept apart
//! from `matrix` so that `model::Case` can name them without the model depending on
//! the matrix.

use crate::named::named;

named! {
    /// A dimension of the setting matrix. Declared in the model's order — the order
    /// the relevance rules depend on and case ids name dimensions in — so that
    /// `dim as usize` is its position in `Matrix::dims`. A dimension named after a
    /// setting stands for it (and `smtp.auth.password` and `pop.password` also for
    /// their user and token).
    pub enum Dim / UnknownDim {
        Trigger = "trigger",
        EmailEnabled = "email.enabled",
        EmailScan = "email.scan",
        EmailNotify = "email.notify",
        EmailCounter = "email.counter",
        Notify = "notify",
        Recipients = "recipients",
        SmtpServer = "smtp.server",
        DeviceAddress = "device.address",
        SmtpAuthEnabled = "smtp.auth.enabled",
        SmtpAuthSource = "smtp.auth.source",
        EnvelopeFromMode = "envelope_from.mode",
        EnvelopeFromAddress = "envelope_from.address",
        AdminAddress = "admin.address",
        ServerFault = "server.fault",
        SmtpTls = "smtp.tls",
        ServerListener = "server.listener",
        ServerCert = "server.cert",
        SmtpVerifyExpiry = "smtp.verify.expiry",
        SmtpVerifyCn = "smtp.verify.cn",
        SmtpVerifyKeyUsage = "smtp.verify.key_usage",
        SmtpVerifyChain = "smtp.verify.chain",
        SmtpVerifyRevocation = "smtp.verify.revocation",
        SmtpAuthMethods = "smtp.auth.methods",
        ServerAuth = "server.auth",
        ServerAuthBeforeTls = "server.auth_before_tls",
        ServerRequireAuth = "server.require_auth",
        SmtpAuthPassword = "smtp.auth.password",
        SmtpAuthRealm = "smtp.auth.realm",
        PopBeforeSmtpEnabled = "pop_before_smtp.enabled",
        PopTls = "pop.tls",
        PopApop = "pop.apop",
        PopPassword = "pop.password",
        PopBeforeSmtpWait = "pop_before_smtp.wait",
        ServerPopWindow = "server.pop_window",
        ServerPopFault = "server.pop_fault",
        LoadMode = "load.mode",
        LoadSplitSize = "load.split_size",
        LoadMaxSize = "load.max_size",
        LoadServerCapacity = "load.server_capacity",
        ScanSizeKb = "scan.size_kb",
        ServerSizeLimit = "server.size_limit",
        SmtpTimeout = "smtp.timeout",
        SmtpPort = "smtp.port",
        SmtpSslPort = "smtp.ssl_port",
        SmtpAuthUser = "smtp.auth.user",
        AlertKind = "alert.kind",
        PopServer = "pop.server",
        PopUser = "pop.user",
        PopPort = "pop.port",
        PopSslPort = "pop.ssl_port",
    }
}

/// A name that is not a dimension of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a dimension of the matrix")]
pub struct UnknownDim(pub String);

impl Dim {
    /// Its position in the model (`Matrix::dims`, a row's values).
    pub const fn index(self) -> usize {
        self as usize
    }
}
