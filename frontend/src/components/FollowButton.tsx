import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { followUserByUsername, unfollowUserByUsername } from "../api/client";
import { keys } from "../api/queries/keys";
import type { Profile } from "../api/types";
import { useSession } from "../session/context";

/** Follow or unfollow an author; signed out, it leads to sign up. */
export function FollowButton({ profile, className = "" }: { profile: Profile; className?: string }) {
  const { user } = useSession();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const mutation = useMutation({
    mutationFn: () =>
      profile.following
        ? unfollowUserByUsername(profile.username)
        : followUserByUsername(profile.username),
    onSuccess: ({ profile: updated }) => {
      queryClient.setQueryData(keys.profile(updated.username), updated);
      // Articles embed their author's `following`, and the feed follows it.
      return queryClient.invalidateQueries({ queryKey: keys.articles });
    },
  });
  const action = profile.following ? "Unfollow" : "Follow";
  return (
    <button
      type="button"
      className={`btn btn-sm ${profile.following ? "btn-secondary" : "btn-outline-secondary"} ${className}`}
      aria-pressed={profile.following}
      disabled={mutation.isPending}
      onClick={() => (user ? mutation.mutate() : navigate("/register"))}
    >
      <i className={profile.following ? "ion-minus-round" : "ion-plus-round"} aria-hidden="true" />
      &nbsp;{action} {profile.username}
    </button>
  );
}
