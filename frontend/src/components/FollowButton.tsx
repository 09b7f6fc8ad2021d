import { useNavigate } from "react-router";
import { useToggleFollow } from "../api/queries";
import type { Profile } from "../api/types";
import { useSession } from "../session/context";
import { ActionError } from "./ErrorList";

/** Follow or unfollow an author; signed out, it leads to sign up. */
export function FollowButton({ profile, className = "" }: { profile: Profile; className?: string }) {
  const { user } = useSession();
  const navigate = useNavigate();
  const mutation = useToggleFollow();
  const action = profile.following ? "Unfollow" : "Follow";
  return (
    <>
      <button
        type="button"
        className={`btn btn-sm ${profile.following ? "btn-secondary" : "btn-outline-secondary"} ${className}`}
        aria-pressed={profile.following}
        disabled={mutation.isPending}
        onClick={() => (user ? mutation.mutate(profile) : navigate("/register"))}
      >
        <i className={profile.following ? "ion-minus-round" : "ion-plus-round"} aria-hidden="true" />
        &nbsp;{action} {profile.username}
      </button>
      {mutation.isError && (
        <ActionError action={`${action.toLowerCase()} ${profile.username}`} error={mutation.error} />
      )}
    </>
  );
}
