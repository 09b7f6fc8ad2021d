import defaultAvatar from "../assets/avatar.svg";

/** A user's picture, or a neutral silhouette when they have none. Decorative: the name is beside it. */
export function Avatar({ image, className }: { image: string | null; className?: string }) {
  return <img src={image || defaultAvatar} className={className} alt="" />;
}
