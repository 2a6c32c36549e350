//! Lines and who is on them: creating a line, adding and removing members, leaving, key updates,
//! and following the group's membership as commits change it.

use super::*;

/// A day, the window of `lines_per_peer_per_day_max`.
const DAY_MS: u64 = 24 * 3_600_000;

impl Hotline {
    pub(super) fn add_line(&mut self, line: Line, now_ms: u64) {
        let update_s = self.config.discipline.key_update_interval_s;
        if update_s > 0 {
            self.key_updates.insert(line.id, (now_ms, 0));
            self.timers.insert((now_ms + update_s * 1000, Timer::KeyUpdate(line.id)));
        }
        let interval = self.config.discipline.link_test_interval_s;
        if line.is_direct() && interval > 0 {
            if let Some(peer) = line.members.iter().find(|m| **m != self.config.me).cloned() {
                self.links.insert(
                    line.id,
                    LinkHealth {
                        line: line.id,
                        peer,
                        outstanding: None,
                        last_ok_ms: None,
                        last_rtt_ms: None,
                        offset_ms: None,
                        clock_alarmed: false,
                        alarmed: false,
                        next_test_ms: now_ms,
                    },
                );
                self.timers.insert((now_ms, Timer::LinkTest(line.id)));
            }
        }
        self.lines.insert(line.id, line);
    }

    /// Checks a request for a new line and returns the other members, whose KeyPackages the
    /// runtime must claim before [`Hotline::create_line`].
    pub fn check_new_line(&self, req: &NewLine) -> Result<Vec<MemberCode>, CoreError> {
        let (_, members, _) = self.plan_line(req)?;
        Ok(members.into_iter().filter(|m| *m != self.config.me).collect())
    }

    pub(super) fn plan_line(&self, req: &NewLine) -> Result<(Scope, Vec<MemberCode>, String), CoreError> {
        let scope = Scope::parse(&req.scope).ok_or_else(|| {
            CoreError::invalid("bad_scope", format!("unknown scope '{}', expected ADMM or ADMM-Plus", req.scope))
        })?;
        if self.lines.len() >= self.config.limits.lines_max {
            return Err(CoreError::conflict(
                "too_many_lines",
                format!("this node holds the most lines it may ({})", self.config.limits.lines_max),
            ));
        }
        let title = req.title.clone().unwrap_or_default();
        let me = self.config.me.clone();
        let members = check_line(&self.config.roster, &self.config.limits, scope, &me, &req.members, &title)?;
        if members.len() == 2 {
            let existing = self.lines.values().find(|l| l.scope == scope && l.members == members);
            if let Some(l) = existing {
                return Err(CoreError::conflict(
                    "line_exists",
                    format!(
                        "a direct line of scope {} between {} and {} exists: {}",
                        scope.as_str(),
                        members[0],
                        members[1],
                        l.id
                    ),
                ));
            }
        }
        Ok((scope, members, title))
    }

    /// Creates a line with this member as its home: makes the line's MLS group with the other
    /// members' KeyPackages (one each, claimed and checked by the runtime) and announces the line
    /// with the group's Welcome.
    pub fn create_line(
        &mut self,
        now_ms: u64,
        id: LineId,
        req: NewLine,
        key_packages: Vec<(MemberCode, KeyPackage)>,
    ) -> Result<Record, CoreError> {
        let (scope, members, title) = self.plan_line(&req)?;
        if self.lines.contains_key(&id) || self.mls.has_line(&id.0) {
            return Err(CoreError::conflict("line_exists", format!("line {id} exists")));
        }
        let me = self.config.me.clone();
        let mut expected: Vec<&MemberCode> = members.iter().filter(|m| **m != me).collect();
        let mut given: Vec<&MemberCode> = key_packages.iter().map(|(m, _)| m).collect();
        expected.sort();
        given.sort();
        if expected != given {
            return Err(internal("the KeyPackages do not match the line's members"));
        }
        let created =
            self.mls.create_line(id.0, key_packages.into_iter().map(|(_, kp)| kp).collect()).map_err(internal)?;
        let direct = members.len() == 2;
        let line = Line { id, scope, title, home: me.clone(), members, created_ms: now_ms, direct, taken_ms: now_ms };
        let payload = PayloadV1::LineSetup {
            v: 1,
            scope: scope.as_str().to_string(),
            title: line.title.clone(),
            home: me.to_string(),
            members: line.members.iter().map(|m| m.to_string()).collect(),
            welcome: created.welcome.map(hex::encode),
        };
        self.add_line(line.clone(), now_ms);
        self.hear_joined(&line);
        Ok(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS_SETUP, 0, payload.encode(), Content::LineSetup))
    }

    /// The signature key of `member`'s leaf on a line, as this member's group holds it.
    pub fn leaf_key(&self, line: &LineId, member: &MemberCode) -> Option<Vec<u8>> {
        self.mls.leaf_key(&line.0, member.as_str())
    }

    /// The MLS epoch of a line's group.
    pub fn epoch(&self, line: &LineId) -> Option<u64> {
        self.mls.epoch(&line.0)
    }

    /// Refreshes this member's keys on a line for post-compromise security: the home member
    /// commits (its own new leaf and every pending proposal); another member proposes its update
    /// for the home member to commit.
    pub fn update_keys(&mut self, now_ms: u64, line: LineId) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        // A member that left or was taken off keeps the line's record but has no keys to update.
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden("removed", format!("{} is not on line {}", self.config.me, line.id)));
        }
        self.key_updates.insert(line.id, (now_ms, 0));
        if line.acting_home(&self.config.roster) == self.config.me {
            return self.commit_line(now_ms, &line, true);
        }
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let proposal = self.mls.propose_update(&line.id.0).map_err(internal)?;
        Ok(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, proposal, Content::Handshake(Vec::new())))
    }

    /// Leaves a conference (any member but the home member): proposes this member's removal,
    /// which the home member commits; from that commit on this member reads nothing sent.
    pub fn leave(&mut self, now_ms: u64, line: LineId) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden("removed", format!("{} is not on line {}", self.config.me, line.id)));
        }
        if line.acting_home(&self.config.roster) == self.config.me {
            return Err(CoreError::forbidden(
                "home_stays",
                "the home member stays on its line; it removes the other members instead",
            ));
        }
        if line.members.len() <= 2 {
            return Err(CoreError::conflict("cannot_leave", "a direct line keeps both its members"));
        }
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let proposal = self.mls.propose_leave(&line.id.0).map_err(internal)?;
        Ok(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, proposal, Content::Handshake(Vec::new())))
    }

    /// A line this node holds.
    pub(super) fn line_here(&self, id: &LineId) -> Result<Line, CoreError> {
        self.lines.get(id).cloned().ok_or_else(|| CoreError::not_found("unknown_line", format!("no line {id} here")))
    }

    /// A line whose members this node may change: it is the line's home member.
    pub(super) fn home_line(&self, id: &LineId) -> Result<Line, CoreError> {
        let line = self.line_here(id)?;
        let home = line.acting_home(&self.config.roster);
        if home != self.config.me {
            return Err(CoreError::forbidden(
                "not_home",
                format!("only {home}, the line's home member, changes its members"),
            ));
        }
        Ok(line)
    }

    /// Removes a member from a conference (home member only): commits the removal, after which
    /// the member reads nothing sent on the line.
    pub fn remove_member(&mut self, now_ms: u64, line: LineId, member: &MemberCode) -> Result<Record, CoreError> {
        let line = self.home_line(&line)?;
        if !line.has_member(member) {
            return Err(CoreError::not_found("not_on_line", format!("{member} is not on line {}", line.id)));
        }
        if *member == self.config.me || line.members.len() <= 2 {
            return Err(CoreError::conflict(
                "cannot_remove",
                "a line keeps its home member and at least two members; close a direct line instead",
            ));
        }
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let removals = vec![self.removal_of(&line.id, member)];
        let out = self.mls.remove(&line.id.0, &[member.as_str()], encode_removals(&removals)).map_err(internal)?;
        let recipients: Vec<MemberCode> = line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
        self.note_removals(line.id, &removals);
        let line = self.follow_membership(&line);
        let content = Content::Handshake(removals);
        let mut record = self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, out.commit, content);
        // The removed member receives the commit too, so that its node knows it is off the line.
        record.recipients = recipients;
        Ok(record)
    }

    /// Checks that a member may be added to a line (home member only, scope policy, limits).
    pub fn check_new_member(&self, line: LineId, member: &MemberCode) -> Result<Line, CoreError> {
        let line = self.home_line(&line)?;
        if line.is_direct() {
            return Err(CoreError::conflict(
                "direct_line",
                format!("line {} is a direct line and keeps its two members; open a conference instead", line.id),
            ));
        }
        if line.has_member(member) {
            return Err(CoreError::conflict("already_on_line", format!("{member} is on line {} already", line.id)));
        }
        let mut members: Vec<String> = line.members.iter().map(|m| m.to_string()).collect();
        members.push(member.to_string());
        check_line(&self.config.roster, &self.config.limits, line.scope, &self.config.me, &members, &line.title)?;
        Ok(line)
    }

    /// Adds a member to a line (home member only) from its KeyPackage: commits the addition to the
    /// members, and brings the new member in with a set-up carrying the Welcome. The new member
    /// reads nothing sent before.
    pub fn add_member(
        &mut self,
        now_ms: u64,
        line: LineId,
        member: &MemberCode,
        key_package: KeyPackage,
    ) -> Result<Vec<Record>, CoreError> {
        let line = self.check_new_member(line, member)?;
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        // The commit states whom it adds, so that a record that misses the set-up sent to the new
        // member alone shows why (`docs/WIRE.md`, "Additions").
        let added = adi_wire::commit::Membership::Additions(vec![member.to_string()]).encode();
        let out = self.mls.add(&line.id.0, vec![key_package], added).map_err(internal)?;
        let others: Vec<MemberCode> = line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
        let line = self.follow_membership(&line);
        let mut commit = self.sign(
            now_ms,
            line.clone(),
            PRIORITY_CONTROL,
            CONTENT_MLS,
            epoch,
            out.commit,
            Content::Handshake(Vec::new()),
        );
        commit.recipients = others;
        let payload = PayloadV1::LineSetup {
            v: 1,
            scope: line.scope.as_str().to_string(),
            title: line.title.clone(),
            home: line.home.to_string(),
            members: line.members.iter().map(|m| m.to_string()).collect(),
            welcome: out.welcome.map(hex::encode),
        };
        let mut setup =
            self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS_SETUP, 0, payload.encode(), Content::LineSetup);
        setup.recipients = vec![member.clone()];
        Ok(vec![commit, setup])
    }

    /// Brings a line's member list in line with its MLS group after a commit.
    pub(super) fn follow_membership(&mut self, line: &Line) -> Line {
        let mut members: Vec<MemberCode> =
            self.mls.members(&line.id.0).iter().filter_map(|m| MemberCode::parse(m).ok()).collect();
        members.sort();
        if members.is_empty() || members == line.members {
            return line.clone();
        }
        // A member brought back by this commit may write again, from this epoch on.
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        for m in &members {
            if let Some((_, readded @ None)) = self.removals.get_mut(&(line.id, m.clone())) {
                *readded = Some(epoch);
            }
        }
        let updated = Line { members, ..line.clone() };
        self.lines.insert(updated.id, updated.clone());
        self.hear_joined(&updated);
        updated
    }

    /// Where `member` stopped on a line, as this node holds it: the last of its envelopes here.
    pub(super) fn removal_of(&self, line: &LineId, member: &MemberCode) -> Removal {
        let (seq, hash) = self.heads.get(&(*line, member.clone())).copied().unwrap_or((0, EnvelopeHash::NONE));
        Removal { member: member.clone(), seq, hash }
    }

    /// The last place of `member`'s on a line that this node accepts, fixed by the commit that
    /// took it off; `None` when no removal of it has reached this node, or a later commit
    /// brought it back.
    pub fn removed_after(&self, line: &LineId, member: &MemberCode) -> Option<u64> {
        self.removals.get(&(*line, member.clone())).filter(|(_, readded)| readded.is_none()).map(|(last, _)| *last)
    }

    /// Fixes where members taken off a line stopped: nothing of theirs after it is accepted.
    pub(super) fn note_removals(&mut self, line: LineId, removals: &[Removal]) {
        for r in removals {
            self.removals.insert((line, r.member.clone()), (r.seq, None));
        }
    }

    /// Refuses an envelope from a member taken off the line after the place its removal fixed,
    /// whatever its epoch, unless a later commit brought the member back and the envelope is of
    /// that commit's epoch or later.
    pub(super) fn check_removed(
        &self,
        line: &LineId,
        sender: &MemberCode,
        seq: u64,
        epoch: u64,
    ) -> Result<(), Refusal> {
        let Some((last, readded)) = self.removals.get(&(*line, sender.clone())) else { return Ok(()) };
        if seq > *last && readded.is_none_or(|from| epoch < from) {
            return Err(Refusal::reject(
                RefusalCode::Removed,
                format!("{sender} was taken off line {line} after its envelope #{last}; #{seq} is refused"),
            ));
        }
        Ok(())
    }

    /// A member of the line the home member has not heard from for so many epochs that one more
    /// commit could leave envelopes queued for it, or by it, beyond the past epochs kept.
    pub fn member_behind(&self, line: &Line) -> Option<(MemberCode, u64)> {
        let current = self.mls.epoch(&line.id.0)?;
        let window = MlsConfig::default().past_epochs_max as u64;
        line.members
            .iter()
            .filter(|m| **m != self.config.me)
            .map(|m| (m.clone(), self.heard.get(&(line.id, m.clone())).copied().unwrap_or(0)))
            .filter(|(_, heard)| current + 1 > heard + window.saturating_sub(EPOCH_MARGIN))
            .min_by_key(|(_, heard)| *heard)
    }

    /// Notes that `member` showed itself at `epoch` of a line.
    pub(super) fn hear(&mut self, line: LineId, member: &MemberCode, epoch: u64) {
        let e = self.heard.entry((line, member.clone())).or_insert(epoch);
        *e = (*e).max(epoch);
        self.known.insert((line, member.clone()));
    }

    /// Notes every member of a line not heard from yet as being at the line's current epoch: a
    /// member that joins is there.
    pub(super) fn hear_joined(&mut self, line: &Line) {
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        for m in &line.members {
            self.heard.entry((line.id, m.clone())).or_insert(epoch);
            self.known.insert((line.id, m.clone()));
        }
    }

    /// The home member's commit of its own new leaf and every pending proposal, unless a member
    /// has fallen so far behind that it would lose what is queued ([`Hotline::member_behind`]).
    /// A commit that carries a member's leaving is not held back (`wait_for_members` false).
    pub(super) fn commit_line(
        &mut self,
        now_ms: u64,
        line: &Line,
        wait_for_members: bool,
    ) -> Result<Record, CoreError> {
        let behind = if wait_for_members { self.member_behind(line) } else { None };
        if let Some((member, heard)) = behind {
            return Err(CoreError::conflict(
                "member_behind",
                format!(
                    "{member} was last heard from at epoch {heard}; another key update now could leave envelopes \
                     queued for it beyond the {} past epochs kept, so key updates wait until it is heard from",
                    MlsConfig::default().past_epochs_max
                ),
            ));
        }
        let removals: Vec<Removal> = self
            .mls
            .pending_leaving(&line.id.0)
            .iter()
            .filter_map(|m| MemberCode::parse(m).ok())
            .map(|m| self.removal_of(&line.id, &m))
            .collect();
        let out = self.mls.commit_proposals(&line.id.0, encode_removals(&removals)).map_err(internal)?;
        self.key_updates.insert(line.id, (now_ms, 0));
        let made_in = out.epoch.saturating_sub(1);
        // A pending leaving changes the members: the one leaving still receives the commit.
        let recipients: Vec<MemberCode> = line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
        self.note_removals(line.id, &removals);
        let line = self.follow_membership(line);
        let content = Content::Handshake(removals);
        let mut record = self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, made_in, out.commit, content);
        record.recipients = recipients;
        Ok(record)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_setup(
        &self,
        now_ms: u64,
        sender: &MemberCode,
        envelope: &VerifiedEnvelope,
        scope: &str,
        title: String,
        home: &str,
        members: &[String],
    ) -> Result<Line, Refusal> {
        let body = envelope.body();
        if home != sender.as_str() {
            return Err(Refusal::reject(RefusalCode::BadLineSetup, "only a line's home member may set it up"));
        }
        // A line's first envelope sets it up; a later one brings a member added to a running line
        // in, and only a node that does not hold the line yet takes it.
        let joining = body.seq > 1;
        // A member removed earlier, or that left, holds the line without being on it, and may be
        // brought in again.
        let on_line = self.lines.get(&body.line).is_some_and(|l| l.has_member(&self.config.me));
        if (!joining && body.prev != EnvelopeHash::NONE) || (joining && on_line) {
            return Err(Refusal::reject(
                RefusalCode::BadLineSetup,
                "a line set-up is the home member's first envelope, or brings in a new member",
            ));
        }
        let scope = Scope::parse(scope)
            .ok_or_else(|| Refusal::reject(RefusalCode::BadLineSetup, format!("unknown scope '{scope}'")))?;
        let members =
            check_line(&self.config.roster, &self.config.limits, scope, sender, members, &title).map_err(|e| {
                // Who is listed or suspended may be decided by a roster version the home member
                // holds and this node does not yet (an admission, a suspension, a reinstatement):
                // it takes the set-up again once it catches up. A line against the scope's policy
                // stays refused: the policy changes far more rarely than a line is set up.
                if matches!(e.code, "unknown_member" | "suspended") {
                    Refusal::defer(
                        RefusalCode::NotReady,
                        format!("the roster version held here does not admit this line yet: {}", e.message),
                    )
                } else {
                    Refusal::reject(RefusalCode::BadLineSetup, format!("line refused: {}", e.message))
                }
            })?;
        if !members.contains(&self.config.me) {
            return Err(Refusal::reject(
                RefusalCode::RecipientNotOnLine,
                format!("{} is not a member of this line", self.config.me),
            ));
        }
        // A line made between two members is direct; one joined later has had a member added,
        // so it is a conference.
        let direct = !joining && members.len() == 2;
        let created_ms = body.created_ms;
        let line =
            Line { id: body.line, scope, title, home: sender.clone(), members, created_ms, direct, taken_ms: now_ms };
        if let Some(existing) = self.lines.get(&line.id).filter(|l| l.has_member(&self.config.me)) {
            let same = existing.scope == line.scope
                && existing.members == line.members
                && existing.home == line.home
                && existing.direct == line.direct;
            if !same {
                return Err(Refusal::reject(
                    RefusalCode::BadLineSetup,
                    format!("line {} exists here with another definition", line.id),
                ));
            }
            return Ok(existing.clone());
        }
        if self.lines.len() >= self.config.limits.lines_max {
            return Err(Refusal::defer(RefusalCode::LinesFull, "this node holds the most lines it may"));
        }
        // No member takes the others' share of this node's lines: a line it is home of counts
        // against it for a day from when this node took it.
        let day_max = self.config.limits.lines_per_peer_per_day_max;
        let today =
            self.lines.values().filter(|l| l.home == *sender && l.taken_ms.saturating_add(DAY_MS) > now_ms).count();
        if today >= day_max {
            let detail = format!("{sender} brought this node onto {today} lines in a day, its most");
            return Err(Refusal {
                alarm: Some(Box::new(AlarmChange::quota(sender, now_ms, detail))),
                ..Refusal::defer(
                    RefusalCode::OverQuota,
                    format!(
                        "{sender} has set up {today} lines here in the last day (lines_per_peer_per_day_max = {day_max})"
                    ),
                )
            });
        }
        Ok(line)
    }
}
