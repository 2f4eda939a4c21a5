//! The `voxq-worker` binary; what it runs is in the library
//! ([`voxq_worker::entry`]), compiled once there.

fn main() -> anyhow::Result<()> {
    voxq_worker::entry::main()
}
