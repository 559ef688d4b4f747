//! Plans under review: the plan of every profile of the seed set (`profiles/`) and of the
//! upgrade set (`profiles/upgrade/`), as text, in `tests/snapshots/plans/<set>/<profile>.txt`.
//! A change to a template, a profile or the planner shows there, line by line, and lands only
//! with the snapshot updated (`UPDATE_SNAPSHOTS=1`) in a commit that says why.

use crate::support::repo;
use kubemint::front::{self, Request, Selection};

fn snapshot_set(set: &str, dir: &str) {
    let root = repo();
    let planned = front::plan_set(&Request {
        root: root.clone(),
        profiles_dir: root.join(dir),
        selection: Selection::All,
        release: None,
        sample: false,
        epoch: None,
    })
    .unwrap();
    assert!(!planned.masters.is_empty());
    for m in &planned.masters {
        crate::expect::file(
            &format!("snapshots/plans/{set}/{}.txt", m.plan.profile),
            &m.plan.to_text(),
        );
    }
}

#[test]
fn seed_set_plans() {
    snapshot_set("profiles", "profiles");
}

#[test]
fn upgrade_set_plans() {
    snapshot_set("upgrade", "profiles/upgrade");
}
