//! Writes `template.yaml` from `template.yaml.j2` (run from anywhere in the
//! workspace; see `warm_transfer_dev::template`).

use warm_transfer_dev::template::{Error, OUTPUT, SOURCE, render};

fn main() -> Result<(), Error> {
    let root = warm_transfer_dev::paths::workspace();
    let text = render(&std::fs::read_to_string(root.join(SOURCE))?)?;
    std::fs::write(root.join(OUTPUT), text)?;
    println!("wrote {OUTPUT} from {SOURCE}");
    Ok(())
}
