"""The application loop: live site state, re-plan triggers, dispatch of charging profiles."""
