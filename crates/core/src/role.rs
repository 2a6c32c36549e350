//! Operators' roles at an establishment, and what each may do.

/// What an operator of a node does there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The duty officer keeping the watch: sends, answers, and drafts what a principal releases.
    Duty,
    /// Releases held FLASH and crisis messages and decides.
    Principal,
    /// Attaches translations, and reviews them.
    Translator,
    /// Reads the record; sends nothing.
    Auditor,
    /// Runs the node; may do what a duty officer and a translator do.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Duty, Role::Principal, Role::Translator, Role::Auditor, Role::Admin];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Duty => "duty",
            Role::Principal => "principal",
            Role::Translator => "translator",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Sends messages, answers them and opens lines.
    pub fn may_send(&self) -> bool {
        matches!(self, Role::Duty | Role::Principal | Role::Admin)
    }

    /// Releases what needs a principal's release, and sends a FLASH without one.
    pub fn is_principal(&self) -> bool {
        *self == Role::Principal
    }

    pub fn may_translate(&self) -> bool {
        matches!(self, Role::Translator | Role::Admin)
    }

    pub fn may_review_translations(&self) -> bool {
        matches!(self, Role::Translator | Role::Principal | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_back_and_nothing_else_does() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Principal"), None);
        assert_eq!(Role::parse(""), None);
    }
}
