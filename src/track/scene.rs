//! One sample's view of the machine after the conditions were updated.
//!
//! Status, severities, messages and alert details are all read from the same view, so that within
//! one sample they can never disagree about what is over which limit.

use super::figures::{Levels, Reading, SystemFigures};
use super::idle::{IdleBook, IdleReading};
use super::persistence::{UserBook, UserReading};
use crate::model::{AlertKey, AlertKind, Metric, PersistentEpisode, Snapshot, Timestamp};

pub(crate) struct Scene<'a> {
    pub snap: &'a Snapshot,
    pub readings: &'a [Reading],
    pub figures: &'a SystemFigures,
    pub users: &'a [UserReading],
    pub book: &'a UserBook,
    pub idle: &'a [IdleReading],
    pub idle_book: &'a IdleBook,
    pub persistent: Vec<PersistentEpisode>,
}

impl<'a> Scene<'a> {
    pub fn new(
        snap: &'a Snapshot,
        readings: &'a [Reading],
        figures: &'a SystemFigures,
        users: &'a [UserReading],
        book: &'a UserBook,
        idle: &'a [IdleReading],
        idle_book: &'a IdleBook,
    ) -> Self {
        Scene {
            snap,
            readings,
            figures,
            users,
            book,
            idle,
            idle_book,
            persistent: book.persistent(),
        }
    }

    pub fn at(&self) -> Timestamp {
        self.snap.at
    }

    /// Every figure of the sample with its levels.
    pub fn watched(&self) -> impl Iterator<Item = (&'a Reading, &'a Levels)> + use<'a> {
        let figures = self.figures;
        self.readings
            .iter()
            .filter_map(move |r| figures.levels(&r.id).map(|l| (r, l)))
    }

    pub fn any_exceeded(&self) -> bool {
        self.watched().any(|(_, l)| l.exceeded.is_active())
    }

    pub fn any_persistent(&self) -> bool {
        !self.persistent.is_empty()
    }

    /// The current figure behind an alert key, if it was measured in this sample.
    pub fn value_of(&self, key: &AlertKey) -> Option<f64> {
        match key.kind {
            AlertKind::System => self
                .readings
                .iter()
                .find(|r| r.id.alert_key() == *key)
                .map(|r| r.value),
            AlertKind::User | AlertKind::PersistentUser => self
                .users
                .iter()
                .find(|u| u.name == key.subject && u.follows(key.metric))
                .map(|u| u.value(key.metric))
                .or_else(|| self.gpu_memory_freed(key)),
            // The busiest of the devices the alert was about that the user still holds: it
            // clears when one of them is busy again or the memory there is freed (nothing left
            // to measure). The user's other devices are not what the alert is about.
            AlertKind::GpuIdle => self.snap.gpu.busiest_held_by(
                &key.subject,
                self.idle_book.held_at_last_sample(&key.subject),
            ),
            AlertKind::Recovery => None,
        }
    }

    /// 0 % for a GPU memory alert whose user is still on the machine but holds no GPU memory
    /// any more: a user followed on GPU memory alone is then no longer among the readings, yet
    /// what they hold is measured, and it is nothing.
    fn gpu_memory_freed(&self, key: &AlertKey) -> Option<f64> {
        let user = self.snap.user(&key.subject)?;
        (key.metric == Metric::GpuMemory && user.gpu.is_none()).then_some(0.0)
    }
}
